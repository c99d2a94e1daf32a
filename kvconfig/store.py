"""In-memory KV stores that mirror compacted topics, fed by one background reader thread.

Each namespace has at most one :class:`KVStore` per process. The first read starts the
process's reader, which assigns itself every partition of the store's topic (no consumer
group: every process reads everything), bootstraps from the beginning and keeps following.
Reads are dictionary look-ups: no lock, no I/O; only the reader thread mutates a store's
dict, and a snapshot is a copy taken in one step under the GIL.
"""

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from django.conf import settings
from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.catch_up import EndOfLog
from eventplatform.kafka.config import consumer_options, topic_name
from eventplatform.kafka.producer import send, wait_all

from .namespaces import KVValidationError, Namespace, encode_value, get_namespace

logger = logging.getLogger("kvconfig.store")

HEADER_EDITOR = "editor"
HEADER_EDITED_AT = "edited_at"

Subscriber = Callable[[str, Any, Any], None]


class KVError(Exception):
    """The store cannot answer or confirm a write (broker unreachable, topic missing...)."""


class KVKeyNotFound(KVError, LookupError):
    """Deleting a key that the namespace does not hold."""


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class KVStore:
    """The process's mirror of one namespace. Get one with :func:`get_store`."""

    def __init__(self, namespace: Namespace):
        self.namespace = namespace
        self.topic = topic_name(namespace.topic)
        self._subscribers: list[Subscriber] = []
        self._reset()

    def _reset(self) -> None:
        """Forget everything read so far (a fresh store, or a child after ``fork``)."""
        self.__dict__.pop("get", None)  # back to the method that waits until ready
        self._data: dict[str, Any] = {}
        self._ready = False
        self._registered = False
        self._applied: dict[int, int] = {}  # partition -> next offset to apply
        self._progress = threading.Condition()
        self.problem = ""  # why the store is not ready, when known
        self.skipped = 0  # records that failed validation

    def __repr__(self) -> str:
        return f"<KVStore {self.namespace.name} ready={self._ready} entries={len(self._data)}>"

    # -- reads: a look-up once ready ---------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once the store has caught up with its topic (never blocks)."""
        return self._ready

    @property
    def entries_now(self) -> int:
        """Entries held right now, without waiting to catch up (for gauges)."""
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        if not self._ready:
            self.wait_ready()
        return self._data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        if not self._ready:
            self.wait_ready()
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        if not self._ready:
            self.wait_ready()
        return key in self._data

    def __len__(self) -> int:
        if not self._ready:
            self.wait_ready()
        return len(self._data)

    def __iter__(self) -> Iterator[str]:
        return iter(self.snapshot())

    def snapshot(self) -> MappingProxyType:
        """A consistent, read-only copy of every entry at one moment."""
        if not self._ready:
            self.wait_ready()
        # dict.copy() runs in C without releasing the GIL: the reader cannot interleave.
        return MappingProxyType(self._data.copy())

    def keys(self) -> list[str]:
        return list(self.snapshot().keys())

    def items(self) -> list[tuple[str, Any]]:
        return list(self.snapshot().items())

    def wait_ready(self, timeout: float | None = None) -> "KVStore":
        """Start following the topic if not yet done, and block until caught up."""
        if self._ready:
            return self
        if timeout is None:
            timeout = _setting("KV_READY_TIMEOUT", 30)
        _get_reader().follow(self)
        with self._progress:
            if not self._progress.wait_for(lambda: self._ready, timeout=timeout):
                why = f": {self.problem}" if self.problem else ""
                raise KVError(
                    f"KV store {self.namespace.name!r} did not catch up with topic "
                    f"{self.topic!r} within {timeout:g} s{why}"
                )
        return self

    # -- subscriptions -----------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(key, old, new)`` for every change after bootstrap, in order.

        ``new`` is None for a delete and ``old`` is None for an insert. Callbacks run on the
        reader thread: keep them short and hand real work to another thread (a callback
        must not write to a store, since the write waits for this very thread).
        Returns a function that unsubscribes.
        """
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    # -- writes: produce, then wait until this process has applied the record ---------

    def put(self, key: str, value: Any, *, editor: str, timeout: float | None = None) -> Any:
        """Validate and write ``value``; return it (frozen) once this store shows it."""
        key = self.namespace.validate_key(key)
        value = self.namespace.validate_value(value)
        self._write([(key, encode_value(value))], editor, timeout)
        return value

    def delete(self, key: str, *, editor: str, timeout: float | None = None) -> None:
        """Write a tombstone for ``key``; return once this store no longer holds it."""
        key = self.namespace.validate_key(key)
        if key not in self:
            raise KVKeyNotFound(f"no key {key!r} in namespace {self.namespace.name!r}")
        self._write([(key, None)], editor, timeout)

    def put_many(
        self, entries: Iterable[tuple[str, Any]], *, editor: str, timeout: float | None = None
    ) -> int:
        """Validate every entry first, then write them all and wait until this store shows
        them; nothing is written when any entry is invalid. Returns how many were written."""
        cleaned = [
            (self.namespace.validate_key(key), self.namespace.validate_value(value))
            for key, value in entries
        ]
        self._write([(key, encode_value(value)) for key, value in cleaned], editor, timeout)
        return len(cleaned)

    def _write(
        self, records: list[tuple[str, bytes | None]], editor: str, timeout: float | None
    ) -> None:
        if not editor:
            raise KVValidationError("an editor is required for every write", field="editor")
        if _get_reader().is_reader_thread():
            raise RuntimeError("a subscription callback must not write to a KV store")
        if timeout is None:
            timeout = _setting("KV_WRITE_TIMEOUT", 10)
        deadline = time.monotonic() + timeout
        self.wait_ready(timeout)
        headers = {
            HEADER_EDITOR: editor,
            HEADER_EDITED_AT: datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        futures = [send(self.topic, key=key, value=raw, headers=headers) for key, raw in records]
        landed: dict[int, int] = {}
        for metadata in wait_all(futures, timeout=timeout):
            landed[metadata.partition] = max(landed.get(metadata.partition, -1), metadata.offset)
        with self._progress:
            seen = self._progress.wait_for(
                lambda: all(self._applied.get(p, 0) > offset for p, offset in landed.items()),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        if not seen:
            where = ", ".join(f"partition {p} offset {o}" for p, o in sorted(landed.items()))
            raise KVError(
                f"write to {self.topic!r} landed at {where}, but this process's store had not "
                f"applied it within {timeout:g} s"
            )

    # -- applied by the reader thread only ---------------------------------------------

    def _apply(self, partition: int, records: list) -> None:
        changes = []
        data = self._data
        for record in records:
            try:
                key = self.namespace.validate_key(
                    record.key.decode() if isinstance(record.key, bytes) else record.key
                )
                new = None if record.value is None else self.namespace.decode_value(record.value)
            except (KVValidationError, UnicodeDecodeError) as error:
                self.skipped += 1
                logger.warning(
                    "invalid KV record skipped",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "error": str(error),
                    },
                )
                continue
            old = data.get(key)
            if new is None:
                data.pop(key, None)
            else:
                data[key] = new
            if self._ready and old != new:
                changes.append((key, old, new))
        with self._progress:
            self._applied[partition] = records[-1].offset + 1
            self._progress.notify_all()
        for change in changes:
            self._notify(*change)

    def _notify(self, key: str, old: Any, new: Any) -> None:
        for callback in list(self._subscribers):
            try:
                callback(key, old, new)
            except Exception:
                logger.exception(
                    "KV subscriber failed", extra={"namespace": self.namespace.name, "key": key}
                )

    def _mark_ready(self) -> None:
        with self._progress:
            self._ready = True
            self.problem = ""
            # From now on a read is the dict's own look-up: the reader only ever mutates
            # this same dict, and nothing remains to wait for.
            self.get = self._data.get
            self._progress.notify_all()
        logger.info(
            "KV store ready",
            extra={"namespace": self.namespace.name, "entries": len(self._data)},
        )

    def _set_problem(self, problem: str) -> None:
        self.problem = problem


class _Reader:
    """The one thread per process that feeds every store from its topic."""

    poll_timeout_ms = 200
    max_records = 5000

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[KVStore] = []
        self._by_topic: dict[str, KVStore] = {}
        self._bootstrapping: dict[KVStore, EndOfLog] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kv-reader", daemon=True)
        self._consumer: KafkaConsumer | None = None

    def follow(self, store: KVStore) -> None:
        """Have the reader assign the store's partitions (from the reader thread)."""
        with self._lock:
            if store._registered:
                return
            store._registered = True
            self._pending.append(store)
            if not self._thread.is_alive() and not self._stop.is_set():
                self._thread.start()

    def is_reader_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread.is_alive() and not self.is_reader_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._consumer = KafkaConsumer(
                        **consumer_options(),
                        group_id=None,
                        enable_auto_commit=False,
                        auto_offset_reset="earliest",
                        fetch_max_wait_ms=settings.KAFKA_FETCH_MAX_WAIT_MS,
                        client_id=f"kv-reader-{os.getpid()}",
                    )
                self._assign_pending()
                if not self._by_topic:
                    self._stop.wait(0.05)
                    continue
                self._poll_once()
            except Exception as error:
                logger.exception("KV reader error; retrying")
                for store in self._bootstrapping:
                    store._set_problem(f"{type(error).__name__}: {error}")
                self._stop.wait(1)
        if self._consumer is not None:
            self._consumer.close()

    def _assign_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        added: list[TopicPartition] = []
        for store in pending:
            partitions = self._consumer.partitions_for_topic(store.topic)
            if not partitions:
                store._set_problem(
                    f"topic {store.topic!r} does not exist (run manage.py create_topics)"
                )
                with self._lock:
                    self._pending.append(store)  # retried on the next loop
                continue
            tps = [TopicPartition(store.topic, p) for p in sorted(partitions)]
            self._by_topic[store.topic] = store
            added.append((store, tps))
        if added:
            new = [tp for _, tps in added for tp in tps]
            self._consumer.assign(list(self._consumer.assignment() | set(new)))
            self._consumer.seek_to_beginning(*new)
            for store, tps in added:
                self._bootstrapping[store] = EndOfLog(self._consumer, tps)
        elif pending:
            self._stop.wait(0.5)  # topics still missing: do not spin on metadata requests

    def _poll_once(self) -> None:
        batches = self._consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        touched = set()
        count = 0
        for tp, records in batches.items():
            if records:
                self._by_topic[tp.topic]._apply(tp.partition, records)
                touched.add(tp.topic)
                count += len(records)
        for store, end in list(self._bootstrapping.items()):
            if end.reached(polled_nothing=store.topic not in touched):
                del self._bootstrapping[store]
                store._mark_ready()


_reader_lock = threading.Lock()
_reader: _Reader | None = None
_stores: dict[str, KVStore] = {}


def _get_reader() -> _Reader:
    global _reader
    if _reader is None:
        with _reader_lock:
            if _reader is None:
                _reader = _Reader()
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
            store = _stores.setdefault(topic, KVStore(spec))
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
