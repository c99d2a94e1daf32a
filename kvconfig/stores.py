"""This process's KV stores: one per namespace, all fed by one reader thread.

A store costs nothing until its first read, which starts the reader. After ``fork`` the
child starts over with a reader of its own; at exit the reader stops.
"""

import atexit
import os
import threading

from eventplatform.kafka.config import topic_name

from .namespaces import get_namespace
from .reader import KVReader
from .store import KVStore

_reader_lock = threading.Lock()
_reader: KVReader | None = None
_stores: dict[str, KVStore] = {}


def _get_reader() -> KVReader:
    global _reader
    if _reader is None:
        with _reader_lock:
            if _reader is None:
                _reader = KVReader()
    return _reader


def get_store(namespace: str) -> KVStore:
    """The process's store for a namespace (``UnknownNamespace`` if not declared).

    Creating it costs nothing; the first read starts the reader and waits until caught up.
    """
    spec = get_namespace(namespace)
    topic = topic_name(spec.topic)
    store = _stores.get(topic)
    if store is None:
        with _reader_lock:
            store = _stores.setdefault(topic, KVStore(spec, reader=_get_reader))
    return store


def started_stores() -> list[KVStore]:
    """Stores this process has started following (for status pages and metrics)."""
    return [store for store in _stores.values() if store._registered]


def shutdown(timeout: float = 5) -> None:
    """Stop the reader and forget every store; the next use starts afresh."""
    global _reader
    with _reader_lock:
        reader, _reader = _reader, None
        _stores.clear()
    if reader is not None:
        reader.stop(timeout)


def _after_fork_in_child() -> None:
    # The parent's reader thread does not exist in the child and its locks may be held:
    # start over, lazily, with fresh locks; subscriptions carry over.
    global _reader, _reader_lock
    _reader_lock = threading.Lock()
    _reader = None
    for store in _stores.values():
        store._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(shutdown)
