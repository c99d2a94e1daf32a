"""One Kafka admin client per process, for the quick questions a process asks the broker
now and then (is it there, where has a consumer group got to).

A client per question would repeat the bootstrap, the version probe and the metadata
request each time; and kafka-python's constructor, when it cannot bootstrap, waits its
whole timeout and leaves its IO thread behind. So the client is made once, after a plain
connect shows a broker is listening, and dropped (to be made afresh) after any failure.
"""

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

from kafka import KafkaAdminClient

from .config import client_options

_lock = threading.Lock()
_admin: KafkaAdminClient | None = None


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock as it forked: the child's copy would
    # stay held for ever. The client's connections are the parent's too.
    global _lock, _admin
    _lock, _admin = threading.Lock(), None


os.register_at_fork(after_in_child=_after_fork_in_child)


def accepts_connections(server: str) -> bool:
    """Whether ``host:port`` accepts a TCP connection within 2 s."""
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def shared_admin() -> Iterator[KafkaAdminClient]:
    """The process's admin client, one caller at a time. Raises ``ConnectionError`` when
    no bootstrap server listens; a failure inside the block drops the client."""
    global _admin
    with _lock:
        if _admin is None:
            servers = client_options()["bootstrap_servers"]
            if not any(accepts_connections(server) for server in servers):
                raise ConnectionError(
                    f"no bootstrap server accepts connections: {', '.join(servers)}"
                )
            _admin = KafkaAdminClient(
                **client_options(),
                request_timeout_ms=3000,
                bootstrap_timeout_ms=3000,
                client_id=f"eventplatform-{os.getpid()}",
            )
        try:
            yield _admin
        except BaseException:
            _admin.close()
            _admin = None
            raise


def close_shared_admin() -> None:
    """Close the process's admin client (tests do so before their broker stops)."""
    global _admin
    with _lock:
        if _admin is not None:
            _admin.close()
        _admin = None
