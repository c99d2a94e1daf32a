"""The in-memory mirror of one KV namespace: reads, subscriptions and confirmed writes.

A :class:`KVStore` holds the namespace's entries in a dict that only the process's reader
thread (:mod:`kvconfig.reader`) mutates. Reads are dictionary look-ups: no lock, no I/O;
a snapshot is a copy taken in one step under the GIL. Get a store with
:func:`kvconfig.stores.get_store`: one per namespace and process.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from django.conf import settings
from kafka.errors import KafkaError, KafkaTimeoutError

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all

from .schema import KVValidationError, Namespace, encode_value

if TYPE_CHECKING:
    from .reader import KVReader

logger = logging.getLogger("kvconfig.store")

HEADER_EDITOR = "editor"
HEADER_EDITED_AT = "edited_at"

Subscriber = Callable[[str, Any, Any], None]


class KVError(Exception):
    """The store cannot answer or confirm a write (broker unreachable, topic missing...)."""


class KVKeyNotFound(KVError, LookupError):
    """Deleting a key that the namespace does not hold."""


class KVTimeout(KVError, KafkaTimeoutError):
    """The store did not catch up, or confirm a write, in time: the broker is slow or down.

    Also a retriable Kafka timeout, so a consumer that writes to a store waits the outage
    out like any other broker outage instead of giving up on the batch.
    """

    __str__ = Exception.__str__  # the message alone, as for every KVError


class KVWriteUnconfirmed(KVTimeout):
    """A write the broker did not acknowledge in time: its outcome is unknown.

    The producer keeps trying to deliver it for a while after the write stopped waiting,
    so it may still land. Saying "not saved" would send the editor to write again what
    may already be there; they should look first.
    """


class KVNotYetApplied(KVTimeout):
    """A write the broker acknowledged that this process's store had not applied in time.

    The write is on the topic and every store applies it as it catches up; only this
    process's reads may still show the value before it for a moment.
    """


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


class KVStore:
    """The process's mirror of one namespace. Get one with :func:`~kvconfig.stores.get_store`.

    ``reader`` returns the process's reader thread when called (a new one after ``fork``).
    """

    def __init__(self, namespace: Namespace, *, reader: Callable[[], "KVReader"]):
        self.namespace = namespace
        self._reader = reader
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
        # While the topic, deleted and created again, is read anew: what it holds so far.
        self._rereading: dict[str, Any] | None = None

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

    def follow(self) -> "KVStore":
        """Start following the topic if not yet done, without waiting."""
        self._reader().follow(self)
        return self

    def wait_ready(self, timeout: float | None = None) -> "KVStore":
        """Start following the topic if not yet done, and block until caught up."""
        if self._ready:
            return self
        if timeout is None:
            timeout = _setting("KV_READY_TIMEOUT", 30)
        self.follow()
        with self._progress:
            if not self._progress.wait_for(lambda: self._ready, timeout=timeout):
                why = f": {self.problem}" if self.problem else ""
                raise KVTimeout(
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
        if self._reader().is_reader_thread():
            raise RuntimeError("a subscription callback must not write to a KV store")
        if timeout is None:
            timeout = _setting("KV_WRITE_TIMEOUT", 10)
        deadline = time.monotonic() + timeout
        self.wait_ready(timeout)
        headers = {
            HEADER_EDITOR: editor,
            HEADER_EDITED_AT: datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        landed: dict[int, int] = {}
        for metadata in self._send_all(records, headers, timeout):
            landed[metadata.partition] = max(landed.get(metadata.partition, -1), metadata.offset)
        try:
            self.wait_until_applied(landed, timeout=max(0.0, deadline - time.monotonic()))
        except KVTimeout as late:
            raise KVNotYetApplied(f"written, but {late}") from None

    def _send_all(self, records: list[tuple[str, bytes | None]], headers: dict, timeout: float):
        """Produce ``records`` and return their metadata once the broker acknowledged all.

        A failure says whether anything may have been written: a record the producer took
        may still be delivered after the wait gave up on it.
        """
        futures = []
        try:
            for key, raw in records:
                futures.append(send(self.topic, key=key, value=raw, headers=headers))
            return wait_all(futures, timeout=timeout)
        except KafkaTimeoutError as error:
            if not futures:
                raise KVTimeout(f"nothing written: the broker did not answer ({error})") from None
            raise KVWriteUnconfirmed(
                f"the broker did not acknowledge the write within {timeout:g} s, so it may "
                "still be applied in the next seconds; check before writing it again"
            ) from None
        except KafkaError as error:
            raise KVError(f"the broker refused the write: {error}") from None

    def wait_until_applied(self, offsets: Mapping[int, int], *, timeout: float | None = None):
        """Block until this store has applied every ``partition: offset`` given.

        For a record read from the store's topic elsewhere (a consumer, a write's
        acknowledgement): once this returns, reads reflect that record or a later one.
        """
        if timeout is None:
            timeout = _setting("KV_WRITE_TIMEOUT", 10)
        deadline = time.monotonic() + timeout
        self.wait_ready(timeout)
        with self._progress:
            seen = self._progress.wait_for(
                # While a recreated topic is read anew, what it applies is not served yet.
                lambda: (
                    self._rereading is None
                    and all(self._applied.get(p, 0) > offset for p, offset in offsets.items())
                ),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        if not seen:
            where = ", ".join(f"partition {p} offset {o}" for p, o in sorted(offsets.items()))
            raise KVTimeout(
                f"{self.topic!r} at {where} was not applied by this process's store "
                f"within {timeout:g} s"
            )

    # -- applied by the reader thread only ---------------------------------------------

    def _apply(self, partition: int, records: list) -> None:
        """Apply one partition's records in log order; skip (and count) invalid ones.

        A key's value is its latest record, as compaction keeps it: an invalid value
        leaves the key without one, as a tombstone would. Keeping the value before it
        instead would last only until compaction removed that record, so processes
        started later would disagree with those running.

        Runs for every record a store bootstraps, so the loop keeps what it uses in
        locals, and the old value a change notification needs is only looked up once
        the store is ready (subscribers hear of changes after bootstrap only).
        """
        data = self._data if self._rereading is None else self._rereading
        decode_key = self.namespace.decode_key
        decode_value = self.namespace.decode_value
        live = self._ready and self._rereading is None
        changes = []
        for record in records:
            try:
                key = decode_key(record.key)
            except KVValidationError as error:
                self._skip(record, error)
                continue
            raw = record.value
            try:
                new = None if raw is None else decode_value(raw)
            except KVValidationError as error:
                self._skip(record, error)
                new = None
            if new is None:
                old = data.pop(key, None)
            else:
                old = data.get(key) if live else None
                data[key] = new
            if live and old != new:
                changes.append((key, old, new))
        with self._progress:
            self._applied[partition] = records[-1].offset + 1
            self._progress.notify_all()
        for change in changes:
            self._notify(*change)

    def _skip(self, record, error: KVValidationError) -> None:
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

    def _begin_reread(self) -> None:
        """The topic was deleted and created again: read the new one from its start beside
        the values served meanwhile, which :meth:`_end_reread` replaces once it is read."""
        with self._progress:
            self._rereading = {}
            self._applied = {}  # the new log's offsets start again at 0

    def _end_reread(self) -> None:
        """Serve what the new topic holds: keys it lacks are deleted, and subscribers hear
        of every key that changed, as they would of live changes."""
        fresh, data, changes = self._rereading, self._data, []
        for key in [key for key in data if key not in fresh]:
            changes.append((key, data.pop(key), None))
        for key, new in fresh.items():
            old = data.get(key)
            if old != new:
                data[key] = new  # the same dict, which ``get`` is bound to
                changes.append((key, old, new))
        with self._progress:  # only now may writes waiting for the reread return
            self._rereading = None
            self._progress.notify_all()
        for change in changes if self._ready else ():  # they hear of changes once ready
            self._notify(*change)
        logger.warning(
            "KV store read its recreated topic anew",
            extra={"namespace": self.namespace.name, "entries": len(data), "changed": len(changes)},
        )

    def _set_problem(self, problem: str) -> None:
        self.problem = problem
