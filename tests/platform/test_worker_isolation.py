"""Each pytest-xdist worker reads and writes a Redis database of its own."""

import os
import subprocess
import sys
from pathlib import Path

from tests.worker_isolation import MOVED_FOR, redis_url_of_worker

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_moves_up_from_the_database_the_url_names():
    assert redis_url_of_worker("redis://127.0.0.1:6379/7", 1) == "redis://127.0.0.1:6379/8"
    assert redis_url_of_worker("redis://127.0.0.1:6379", 2) == "redis://127.0.0.1:6379/2"
    assert redis_url_of_worker("redis://:secret@cache:6380/0", 1) == "redis://:secret@cache:6380/1"


def test_a_unix_socket_url_chooses_its_database_in_the_query():
    assert redis_url_of_worker("unix:///tmp/r/redis.sock", 1) == "unix:///tmp/r/redis.sock?db=1"
    assert (
        redis_url_of_worker("unix:///tmp/r/redis.sock?db=3&x=y", 2)
        == "unix:///tmp/r/redis.sock?db=5&x=y"
    )


def test_a_process_started_by_a_worker_keeps_the_workers_database():
    # A worker moves its REDIS_URL as its settings load; a process it starts inherits
    # that environment and loads the same settings, and must not move again.
    move_and_print = (
        "import os; from tests.worker_isolation import isolate_this_worker; "
        "isolate_this_worker(); print(os.environ['REDIS_URL'], flush=True)"
    )
    worker = f"{move_and_print}; import subprocess, sys; "
    worker += f"subprocess.run([sys.executable, '-c', {move_and_print!r}], check=True)"
    printed = _run(worker, PYTEST_XDIST_WORKER="gw1", REDIS_URL="redis://127.0.0.1:6379/0")
    assert printed.split() == ["redis://127.0.0.1:6379/1"] * 2


def _run(code: str, **env: str) -> str:
    # Started outside any worker: the variables of the worker running this test go.
    environment = {k: v for k, v in os.environ.items() if k not in (MOVED_FOR, "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
