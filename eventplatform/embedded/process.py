"""One lifecycle for every child of the embedded platform: start, wait until ready, stop.

Children run in sessions of their own (a Ctrl-C in the terminal reaches ``runplatform``
only, which stops them in order), yet must never outlive it: on Linux each child asks the
kernel for a signal when its parent dies, so a SIGKILL of ``runplatform`` takes them along.
"""

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
)


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent ``parent_pid`` dies."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, sig)
    # The parent may have died before prctl: then nobody would signal us.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def _preexec(parent_pid: int, sig: int) -> Callable[[], None]:
    def preexec() -> None:
        os.setsid()
        die_with_parent(parent_pid, sig)

    return preexec


def spawn(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.STDOUT,
    death_signal: int = signal.SIGKILL,
) -> subprocess.Popen:
    """Start ``argv`` in a session of its own that gets ``death_signal`` when we die.

    SIGKILL by default: a parent that died without stopping its children crashed, and a
    graceful stop (gunicorn's, Celery's) could take longer than anyone waits; every
    consumer is built to survive a kill. The kernel sends it when the thread that started
    the child ends, so start children from the main thread.
    """
    return subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        preexec_fn=_preexec(os.getpid(), death_signal),
    )


def wait_ready(
    process: subprocess.Popen, ready: Callable[[], bool], *, timeout: float, interval=0.02
) -> bool:
    """Poll ``ready()`` until true; False once ``timeout`` passed or the process exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if process.poll() is not None:
            return False
        time.sleep(interval)
    return False


def stop(process: subprocess.Popen | None, *, timeout: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit status (None: no process)."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
