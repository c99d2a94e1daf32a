"""Processes of the contacts pipeline, started beside a benchmark and stopped after it."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What each kind of process logs once it can do its work.
MARKERS = {
    "celery": "ready.",
    "import_contacts": "partitions assigned",
    "relay_notifications": "partitions assigned",
}


@contextlib.contextmanager
def running(*commands: list[str]):
    """Start each command (``manage.py`` arguments, or ``["celery", ...]``); wait until
    consumers have partitions and the worker is ready; SIGTERM all on exit."""
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    processes = []
    for index, command in enumerate(commands):
        if command[0] == "celery":
            argv = [str(ROOT / ".venv/bin/celery"), *command[1:]]
        else:
            argv = [sys.executable, str(ROOT / "manage.py"), *command]
        log = open(logs / f"{index}-{command[0]}.log", "wb")  # noqa: SIM115
        processes.append(
            (
                command,
                subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
                log.name,
            )
        )
    try:
        deadline = time.monotonic() + 60
        for command, _, log_path in processes:
            marker = MARKERS.get(command[0])
            while marker and marker not in Path(log_path).read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start; see {log_path}")
                time.sleep(0.1)
        yield
    finally:
        for _, process, _ in processes:
            process.send_signal(signal.SIGTERM)
        for _, process, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def celery_queue() -> str:
    """A queue of this run alone, set for this process and the worker it starts."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
    return queue
