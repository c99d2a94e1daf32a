"""One lifecycle for every child of the embedded platform: start, wait until ready, stop.

Children run in sessions of their own (a Ctrl-C in the terminal reaches ``runplatform``
only, which stops them in order), yet must never outlive it: on Linux each child asks the
kernel for a signal when its parent dies, so a SIGKILL of ``runplatform`` takes them along.

:func:`spawn`, :func:`wait_ready` and :func:`stop_together` are the three steps;
:class:`ChildProcess` puts them together for a server that must answer before anyone uses
it (the embedded broker and Redis), and the supervisor uses them for the Procfile processes.
"""

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Stopped:
    """How one process ended: its exit status, and whether it had to be killed."""

    process: subprocess.Popen
    status: int
    killed: bool


def stop_together(processes: Iterable[subprocess.Popen], *, timeout: float) -> list[Stopped]:
    """SIGTERM every running one at once, then SIGKILL those still running ``timeout``
    seconds later: stopping them one after another would add their grace periods up."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    stopped = []
    for process in processes:
        killed = False
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            killed = True
        stopped.append(Stopped(process, process.wait(), killed))
    return stopped


def stop(process: subprocess.Popen | None, *, timeout: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit status (None: no process)."""
    if process is None:
        return None
    return stop_together([process], timeout=timeout)[0].status


class ChildUnavailable(RuntimeError):
    """A child server is missing, cannot run, or did not become ready."""


class ChildProcess:
    """A server the platform runs as a child: started, waited for until it answers, stopped.

    Subclasses say what to run (:meth:`command`), how to tell it answers (:meth:`ready`)
    and what readiness means in words (``readiness``, for the error), and may clean up
    before a start (:meth:`prepare`). They raise their own subclass of
    :class:`ChildUnavailable` (``unavailable``), so callers can name what failed.
    """

    #: Who it is, in an error message ("the embedded broker").
    title = "the child process"
    unavailable: type[ChildUnavailable] = ChildUnavailable

    def __init__(self, *, log_path: Path | None = None):
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    @property
    def readiness(self) -> str:
        """What did not happen when it is not ready in time ("answer on PATH")."""
        return "become ready"

    def prepare(self) -> None:
        """Called before each start (remove a stale socket, say)."""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 15.0):
        """Start it and return once it answers; raises ``unavailable`` otherwise."""
        self.prepare()
        command = self.command()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = spawn(command, stdout=log)
        except OSError as error:
            raise self.unavailable(f"{self.title} could not run: {error}") from None
        finally:
            if self.log_path:
                log.close()
        if not wait_ready(self.process, self.ready, timeout=timeout):
            code = self.process.poll()
            self.stop()
            raise self.unavailable(
                f"{self.title} did not {self.readiness} within {timeout:.0f}s"
                + (f" (exited with {code})" if code is not None else "")
            )
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        stop(self.process, timeout=timeout)
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
