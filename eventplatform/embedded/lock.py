"""One platform per ``var/``: an exclusive lock on ``var/platform.lock`` naming its holder.

The kernel drops an ``flock`` when its holder dies, however it dies, so a stale file never
blocks a start; the file's text (pid and port) is only there to name who holds it.
"""

import fcntl
import json
import os
from pathlib import Path


class PlatformAlreadyRunning(RuntimeError):
    """Another platform holds the lock of this ``var/``; the message names it."""


class PlatformLock:
    """Held from :meth:`acquire` until this process exits or calls :meth:`release`."""

    def __init__(self, var_dir: Path):
        self.path = Path(var_dir) / "platform.lock"
        self._fd: int | None = None

    def acquire(self, *, port: int) -> "PlatformLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise PlatformAlreadyRunning(
                f"another platform is running on {self.path.parent} "
                f"(pid {holder.get('pid', '?')}, http://127.0.0.1:{holder.get('port', '?')}/); "
                "stop it first, or give this one another VAR_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "port": port}).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
