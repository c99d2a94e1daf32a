"""Private PostgreSQL and Redis servers that a test may stop and start as it likes.

The suite's shared servers serve every other test (and other suites on the machine), so a
test that takes a dependency away runs the platform on servers of its own.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from eventplatform.embedded.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent.parent
PG_BIN = Path("/usr/lib/postgresql") / max(os.listdir("/usr/lib/postgresql"), key=int) / "bin"


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root; root runs its tools as the postgres user."""
    command = [str(PG_BIN / command[0]), *command[1:]]
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else command


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port (fsync off: tests only)."""

    def __init__(self):
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        if os.getuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
        self.data = self.home / "data"
        subprocess.run(
            _as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
            + ["--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(self.data), "-o", options)
            + ["-l", str(self.home / "server.log"), "-w", "start"],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"),
            check=True,
            capture_output=True,
        )

    def create_database(self, name: str) -> str:
        subprocess.run(
            [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
            + ["-d", "postgres", "-Xqc", f'CREATE DATABASE "{name}"'],
            check=True,
            capture_output=True,
        )
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop()
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    server.start()
    try:
        yield server
    finally:
        server.remove()


def celery_worker_command(queue: str, *options: str) -> list[str]:
    """The platform's Celery worker on ``queue`` (the one these tests' uploads go to)."""
    celery = Path(sys.executable).parent / "celery"
    return [str(celery), "-A", "eventplatform", "worker", "-Q", queue, *options]


class PrivateRedis:
    """A Redis server on a free loopback port that keeps nothing: a restart starts empty."""

    def __init__(self, logs: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logs = logs
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.logs / "redis.log", "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        assert wait_for_port("127.0.0.1", self.port, timeout=30), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Platform:
    """Every process of the platform on the test's broker and on private databases."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.web_url = ""

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"manage.py {args}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.processes[name] = process
        return process

    def start(self) -> None:
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in ("relay_outbox", "project_installed_apps", "import_contacts"):
            self.spawn(command, [*manage, command])
        self.spawn("relay_notifications", [*manage, "relay_notifications"])
        queue = self.env["CELERY_TASK_DEFAULT_QUEUE"]
        self.spawn("worker", celery_worker_command(queue, "--pool", "solo"))
        port = free_port()
        self.spawn(
            "web",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["eventplatform.asgi:application"],
        )
        assert wait_for_port("127.0.0.1", port, timeout=60), "daphne did not start"
        self.web_url = f"http://127.0.0.1:{port}"

    def exited(self) -> dict[str, int]:
        """The processes that are no longer running, with their exit codes."""
        return {
            name: process.returncode
            for name, process in self.processes.items()
            if process.poll() is not None
        }

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait()


def _queue() -> str:
    return f"faults-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def platform_on_private_redis(private_redis, subprocess_env, kafka, tmp_path):
    """The whole platform on the test databases, ``kafka`` and a private Redis (channel
    layer, notification history and Celery's queue)."""
    env = {
        **subprocess_env,
        "REDIS_URL": private_redis.url,
        "CELERY_BROKER_URL": private_redis.url,
        "CELERY_TASK_DEFAULT_QUEUE": _queue(),
    }
    platform = Platform(env, tmp_path)
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()


@pytest.fixture
def platform_on_private_postgres(private_postgres, subprocess_env, kafka, tmp_path):
    """The whole platform (web, relay, projector, importer, relays, Celery) on ``kafka`` and
    a private PostgreSQL holding both databases; the replica alias reads the projections
    database itself (no standby here)."""
    default = private_postgres.create_database("platform")
    projections = private_postgres.create_database("projections")
    env = {
        **subprocess_env,
        "DATABASE_URL": default,
        "PROJECTIONS_DATABASE_URL": projections,
        "PROJECTIONS_REPLICA_DATABASE_URL": projections,
        "CELERY_TASK_DEFAULT_QUEUE": _queue(),
        # A stall bound well inside the outage, swept every second: an outage must not
        # fail the imports whose batches wait it out.
        "CONTACTS_IMPORT_STALL_SECONDS": "20",
        "CONTACTS_SWEEP_SECONDS": "1",
    }
    platform = Platform(env, tmp_path)
    platform.manage("migrate", "--no-input")
    platform.manage("migrate", "--no-input", "--database", "projections")
    platform.start()
    try:
        yield platform
    finally:
        platform.stop()
