"""One idempotent producer per process, flushed at exit, re-created after ``fork``."""

import atexit
import os
import threading
from collections.abc import Iterable

from django.conf import settings
from kafka import KafkaProducer

from .config import client_options

Headers = list[tuple[str, bytes]]

_lock = threading.Lock()
_producer: KafkaProducer | None = None
_producer_pid: int | None = None


def get_producer() -> KafkaProducer:
    """The process's producer: ``acks=all`` and idempotence, so a retry never duplicates."""
    global _producer, _producer_pid
    if _producer is not None and _producer_pid == os.getpid():
        return _producer
    with _lock:
        if _producer is None or _producer_pid != os.getpid():
            # After fork the parent's producer threads do not exist here: start afresh.
            _producer = KafkaProducer(
                **client_options(),
                acks="all",
                enable_idempotence=True,
                linger_ms=5,
                compression_type=None,
                max_block_ms=settings.KAFKA_MAX_BLOCK_MS,
                request_timeout_ms=10_000,
                delivery_timeout_ms=30_000,
                client_id=f"eventplatform-{os.getpid()}",
                # Topics exist only as create_topics declares them; a missing one is an error.
                allow_auto_create_topics=False,
            )
            _producer_pid = os.getpid()
    return _producer


def encode_key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


def encode_headers(headers: dict[str, str] | Headers | None) -> Headers:
    if not headers:
        return []
    items = headers.items() if isinstance(headers, dict) else headers
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]


def send(topic: str, *, key, value: bytes | None, headers=None):
    """Send without waiting; returns the future (call ``.get()`` to be sure it landed)."""
    return get_producer().send(
        topic, key=encode_key(key), value=value, headers=encode_headers(headers)
    )


def send_and_wait(topic: str, *, key, value: bytes | None, headers=None, timeout: float = 30):
    """Send one record and return its metadata once the broker acknowledged it.

    Delivery errors are raised, never swallowed: the caller decides whether to retry.
    The record is flushed at once: a caller that waits gains nothing from the producer's
    linger, which would only add its 5 ms to every such send.
    """
    future = send(topic, key=key, value=value, headers=headers)
    get_producer().flush(timeout=timeout)
    return future.get(timeout=timeout)


def wait_all(futures: Iterable, timeout: float = 30) -> list:
    """Flush and wait for every future; raise the first delivery error."""
    get_producer().flush(timeout=timeout)
    return [future.get(timeout=timeout) for future in futures]


def close_producer(timeout: float = 10) -> None:
    """Flush and close this process's producer (also done at interpreter exit)."""
    global _producer
    with _lock:
        if _producer is not None and _producer_pid == os.getpid():
            _producer.flush(timeout=timeout)
            _producer.close(timeout=timeout)
        _producer = None


atexit.register(close_producer)


def reset_producer() -> None:
    """Drop the producer without flushing, e.g. after the broker lost its state.

    The next :func:`get_producer` starts a fresh one with a new producer id, so an
    idempotent-sequence error from a restarted broker cannot wedge the process.
    """
    global _producer
    with _lock:
        if _producer is not None and _producer_pid == os.getpid():
            _producer.close(timeout=0)
        _producer = None
