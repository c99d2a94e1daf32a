#!/usr/bin/env python3
"""The two commands of the README, needing nothing but Python 3.11.

    python3 dev.py run     set up .venv, then run the whole platform on embedded defaults
                           (--port N: web on N, read API on N+1; default 8000)
    python3 dev.py test    set up .venv, then run the test suite (in two processes on
                           PostgreSQL and a Redis server; -n 0: in one)

``test`` uses PostgreSQL on 127.0.0.1:5432 (with its hot standby on 5433 as the read
replica) and Redis on 127.0.0.1:6379 when they answer (as in CI), otherwise SQLite files
and an embedded Redis; the broker is always started by
the test session unless ``KAFKA_BOOTSTRAP_SERVERS`` is set.
"""

import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"


def ensure_environment() -> None:
    """Create ``.venv`` and install the project, again only when pyproject.toml changed."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (this is {sys.version.split()[0]})")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    subprocess.run([PYTHON, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def refuse_a_second_platform() -> None:
    """Exit at once when a platform holds this var/ (runplatform checks again, but only
    after Django has started, which takes seconds on a busy machine)."""
    spec = importlib.util.spec_from_file_location(
        "platform_lock", ROOT / "eventplatform" / "embedded" / "lock.py"
    )
    lock_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lock_module)  # stdlib only: no Django, no package imports
    lock = lock_module.PlatformLock(Path(os.environ.get("VAR_DIR", ROOT / "var")))
    try:
        lock.acquire(port=0)
    except lock_module.PlatformAlreadyRunning as error:
        sys.exit(f"CommandError: {type(error).__name__}: {error}")
    lock.release()


def run_platform(args: list[str]) -> int:
    refuse_a_second_platform()
    # Become runplatform, so signals sent to this process reach it directly.
    os.chdir(ROOT)
    os.execv(PYTHON, [str(PYTHON), "manage.py", "runplatform", *args])


def run_tests(args: list[str]) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if "DATABASE_URL" not in env and answers("127.0.0.1", 5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/eventplatform"
        env.setdefault(
            "PROJECTIONS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/eventplatform_proj"
        )
        if answers("127.0.0.1", 5433):  # the hot standby of .ci/standby
            env.setdefault(
                "PROJECTIONS_REPLICA_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5433/eventplatform_proj",
            )
    redis_process = None
    if "REDIS_URL" not in env:
        if answers("127.0.0.1", 6379):
            env["REDIS_URL"] = "redis://127.0.0.1:6379/0"
        else:
            sock = Path(tempfile.mkdtemp()) / "redis.sock"
            redis_process = subprocess.Popen(
                [PYTHON, "-m", "eventplatform.embedded.redis_server", str(sock)], cwd=ROOT
            )
            env["REDIS_URL"] = f"unix://{sock}"
    try:
        # In parallel only on the servers the workers were measured with (as in CI): on
        # SQLite files and the embedded Redis the suite runs in one process, as it did.
        on_servers = env.get("DATABASE_URL", "").startswith("postgres")
        on_servers = on_servers and env["REDIS_URL"].startswith("redis://")
        options = parallel(args) if on_servers else []
        return subprocess.call([PYTHON, "-m", "pytest", *options, *args], cwd=ROOT, env=env)
    finally:
        if redis_process:
            redis_process.terminate()
            redis_process.wait()


#: Test processes by default: most tests wait on the processes, brokers and outages they
#: set up, so two share two cores well (on the 2-core CI machine a broker's run took 13–15
#: minutes this way, 27–29 in one process).
TEST_WORKERS = 2


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist's options for ``TEST_WORKERS`` workers, unless ``args`` choose their own
    (``-n 0`` runs in one process). Each worker has its own test databases, Redis database
    and broker; slow tests are taken over by whichever worker is free first."""
    chosen = any(
        arg in ("-n", "--numprocesses", "--dist") or arg.startswith(("-n", "--numprocesses="))
        for arg in args
    )
    return [] if chosen else [f"--numprocesses={TEST_WORKERS}", "--dist=worksteal"]


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print(__doc__)
        return 2
    ensure_environment()
    command, rest = sys.argv[1], sys.argv[2:]
    return run_platform(rest) if command == "run" else run_tests(rest)


if __name__ == "__main__":
    sys.exit(main())
