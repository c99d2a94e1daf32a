"""Transactional outbox: write events with the change, relay them to Kafka afterwards.

:func:`publish` inserts a row in the caller's transaction, so an event exists if and only if
the change it reports committed; an event too large for the broker is refused there, before
anything is stored. :class:`OutboxRelay` sends unsent rows in id order, marks them sent only
after the broker acknowledged them, and keeps retrying while the broker or the database is
down. A row the broker refuses for good is set aside with its error and the rows after it
flow on. Rows for a topic the broker does not have are held back, topic by topic, until
it exists: the other topics' rows flow on meanwhile.

Any number of relays may run, and only one sends at a time, so every key's events reach
Kafka in the order they were written: on PostgreSQL the one holding an advisory lock
streams batch after batch (:mod:`.outbox_stream`); on SQLite each batch is a transaction
that holds the database's write lock. At least once: a relay killed after the broker took
rows but before they were recorded sends them again.
"""

import json
import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone
from kafka.errors import KafkaError

from .kafka.envelope import Event
from .kafka.producer import reset_producer
from .kafka.retry import RetryPolicy, is_outage
from .models import OutboxEvent
from .outbox_batch import OutboxBatch
from .outbox_stream import OutboxStream
from .outbox_topics import HeldTopics

#: PostgreSQL channel on which a commit that queued rows wakes the relays.
WAKE_CHANNEL = "eventplatform_outbox"

logger = logging.getLogger("eventplatform.outbox")


class EventTooLarge(ValueError):
    """An event larger than ``OUTBOX_MAX_EVENT_BYTES``: the broker would refuse it."""

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(
            f"the event is {size:,} bytes; the limit is {limit:,} bytes "
            "(make the change smaller, e.g. fewer or smaller app settings)"
        )


class OutsideTransaction(RuntimeError):
    """``publish`` was called outside ``transaction.atomic()``: the event could outlive a
    rolled-back change, or be lost with a committed one."""


def publish(
    topic: str,
    key: str | None,
    event: Event | bytes | None,
    *,
    headers: dict[str, str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> OutboxEvent:
    """Queue ``event`` for ``topic`` (a logical name) in the current transaction."""
    _require_transaction(using)
    row = OutboxEvent.objects.using(using).create(
        topic=topic, key=key, value=_checked_value(key, event), headers=headers or {}
    )
    _wake_relays(using)
    return row


def publish_many(
    topic: str,
    events: Iterable[tuple[str | None, Event | bytes | None]],
    *,
    headers: dict[str, str] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> int:
    """Queue many ``(key, event)`` pairs for ``topic`` in the current transaction.

    The same as :func:`publish` for each pair, at a fraction of the cost: every event is
    checked first, then all are stored at once (``COPY`` on PostgreSQL). Returns how many.
    """
    _require_transaction(using)
    rows = [(key, _checked_value(key, event)) for key, event in events]
    if not rows:
        return 0
    connection = connections[using]
    if connection.vendor == "postgresql":
        now, encoded_headers = timezone.now(), json.dumps(headers or {})
        table = OutboxEvent._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} (topic, key, value, headers, created_at, error) FROM STDIN"
            ) as copy,
        ):
            for key, value in rows:
                copy.write_row((topic, key, value, encoded_headers, now, ""))
    else:
        OutboxEvent.objects.using(using).bulk_create(
            [OutboxEvent(topic=topic, key=k, value=v, headers=headers or {}) for k, v in rows],
            batch_size=500,
        )
    _wake_relays(using)
    return len(rows)


def _require_transaction(using: str) -> None:
    if not connections[using].in_atomic_block:
        raise OutsideTransaction("publish() must run inside transaction.atomic()")


def _checked_value(key: str | None, event: Event | bytes | None) -> bytes | None:
    """The event's bytes, or :class:`EventTooLarge` when the broker would refuse them."""
    value = event.encode() if isinstance(event, Event) else event
    size = len(value or b"") + len((key or "").encode())
    if size > settings.OUTBOX_MAX_EVENT_BYTES:
        raise EventTooLarge(size, settings.OUTBOX_MAX_EVENT_BYTES)
    return value


def _wake_relays(using: str) -> None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        # Delivered at commit, and only then; repeats within a transaction fold into one.
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {WAKE_CHANNEL}")


class OutboxRelay:
    """Moves outbox rows to Kafka; see the module docstring for its guarantees."""

    def __init__(
        self,
        *,
        batch_size: int = 500,
        idle_interval: float = 0.05,
        max_backoff: float = 5.0,
        retention: timedelta | None = None,
        prune_every: float = 60.0,
        missing_topic_recheck: float = 5.0,
        streak_seconds: float = 1.0,
        using: str = DEFAULT_DB_ALIAS,
    ):
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.max_backoff = max_backoff
        self.retention = retention or timedelta(seconds=settings.OUTBOX_RETENTION_SECONDS)
        self.prune_every = prune_every
        self.using = using
        self.sent = 0
        self.set_aside = 0
        self._missing_topics = HeldTopics(recheck_seconds=missing_topic_recheck)
        #: Whether the last pass stopped before it ran out of rows.
        self._more_waiting = False
        self._stop = threading.Event()
        self._stream = OutboxStream(
            using=using,
            batch_size=batch_size,
            topics=self._missing_topics,
            stop=self._stop,
            streak_seconds=streak_seconds,
            on_recorded=self._count,
        )
        self._wakeup = _Wakeup(using)

    @property
    def held_topics(self) -> set[str]:
        """Logical topics the broker did not have; their rows wait, unsent, until it does."""
        return self._missing_topics.held

    def request_stop(self, *_signal_args) -> None:
        self._stop.set()

    def run(self) -> None:
        """Relay until stopped, woken by each commit that queued rows.

        On PostgreSQL a commit's ``NOTIFY`` wakes the relay at once; elsewhere (SQLite) it
        looks again every ``idle_interval`` (50 ms). Outages of the broker or the database
        are waited out with capped backoff.
        """
        try:
            self._loop()
        finally:
            self._wakeup.close()
            connections[self.using].close()  # the relay may run in a thread of its own

    def _loop(self) -> None:
        retry = RetryPolicy(initial_delay=0.1, max_delay=self.max_backoff)
        failures = 0
        last_prune = 0.0
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                if time.monotonic() - last_prune >= self.prune_every:
                    self.prune()
                    last_prune = time.monotonic()
                failures = 0
            except (KafkaError, TimeoutError, DatabaseError) as error:
                # Broker trouble is always waited out (the rows are fine, or they would have
                # been set aside); a database error only when the database is unreachable.
                if isinstance(error, DatabaseError) and not is_outage(error):
                    raise
                delay = retry.delay(failures)
                failures += 1
                logger.warning(
                    "outage: outbox rows kept for retry",
                    extra={"error": repr(error)[:300], "retry_in_s": delay},
                )
                if isinstance(error, KafkaError | TimeoutError):
                    reset_producer()  # a restarted broker forgets producer ids
                else:
                    connections[self.using].close()  # reconnect once the database is back
                self._stop.wait(delay)
                continue
            # A pass that ran out of rows took every row there was: rows committed since then
            # woke the channel, so look again only when woken (without the channel, when
            # nothing came).
            if not sent or (self._wakeup.live and not self._more_waiting):
                self._wakeup.wait(self.idle_interval, stop=self._stop)

    def relay_once(self) -> int:
        """Send the unsent rows there are, in id order; return how many were handled.

        Raises when sending fails (the rows not yet acknowledged stay unsent and are sent
        again); a row the broker refuses for good because of the row itself is set aside
        and the rows after it go on; a row whose topic the broker does not have stays
        unsent, with every later row of its topic, while the other topics' rows go on.
        """
        self._missing_topics.release_those_that_exist()
        if connections[self.using].vendor == "postgresql":
            streak = self._stream.streak()
            self._more_waiting = streak.cut_short
            return streak.handled
        # SQLite: one batch per transaction, which is IMMEDIATE, so it holds the
        # database's write lock from the select until the batch is recorded.
        with transaction.atomic(using=self.using):
            batch = OutboxBatch(list(self._unsent()), topics=self._missing_topics, using=self.using)
            if not batch.rows:
                return 0
            batch.send().await_acks()
            batch.record()
        self._count(batch)
        self._more_waiting = len(batch.rows) == self.batch_size
        return len(batch.rows)

    def _count(self, batch: OutboxBatch) -> None:
        self.sent += len(batch.sent)
        self.set_aside += len(batch.refused)

    def _unsent(self) -> QuerySet:
        """SQLite: the next unsent rows of the topics not held back, as plain tuples
        (building model instances cost as much as the sends). PostgreSQL's relay selects
        in :mod:`.outbox_stream`."""
        unsent = OutboxEvent.objects.using(self.using).filter(
            sent_at__isnull=True, set_aside_at__isnull=True
        )
        if self.held_topics:
            unsent = unsent.exclude(topic__in=sorted(self.held_topics))
        columns = ("id", "topic", "key", "value", "headers")
        return unsent.order_by("id").values_list(*columns)[: self.batch_size]

    def prune(self) -> int:
        """Delete rows sent longer ago than the retention period."""
        cutoff = timezone.now() - self.retention
        deleted, _ = OutboxEvent.objects.using(self.using).filter(sent_at__lt=cutoff).delete()
        if deleted:
            logger.info("outbox pruned", extra={"rows": deleted})
        return deleted


def resend(*, row_ids: list[int], using: str = DEFAULT_DB_ALIAS) -> int:
    """Put set-aside rows back in the queue (after the cause was fixed); returns how many.

    The key's later rows went to the broker while the row stood aside, so sent alone it
    would land after them, and a compacted topic would keep it as the key's latest value.
    So after the earliest resent row of each key, every later row of that key still in
    the outbox (sent or not, resent or not; not those still set aside) is queued again,
    as a copy, in the order written: the key's latest event is its last record again.
    Consumers see those events twice, which at-least-once delivery allows. Rows already
    pruned (``OUTBOX_RETENTION_SECONDS``) cannot be copied: a row resent after its key's
    later rows were pruned becomes the key's last record.
    """
    rows = OutboxEvent.objects.using(using)
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            # Writers of a key take turns by their own locks, which a resend does not take:
            # without this, a row written beside the resend would commit after the copies
            # and be sent before them. Waits for the writers in progress, holds off new ones
            # until the copies are in. (SQLite's transactions take its write lock at once.)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {OutboxEvent._meta.db_table} IN SHARE ROW EXCLUSIVE MODE"
                )
        resent = list(
            rows.select_for_update()
            .filter(id__in=row_ids, set_aside_at__isnull=False, sent_at__isnull=True)
            .order_by("id")
            .values_list("id", "topic", "key")
        )
        if not resent:
            return 0
        rows.filter(id__in=[row_id for row_id, _, _ in resent]).update(set_aside_at=None, error="")
        earliest: dict[tuple[str, str], int] = {}
        for row_id, topic, key in resent:
            if key is not None:
                earliest.setdefault((topic, key), row_id)
        copies = [
            OutboxEvent(topic=topic, key=key, value=later.value, headers=later.headers)
            for (topic, key), first in earliest.items()
            for later in rows.filter(
                topic=topic, key=key, id__gt=first, set_aside_at__isnull=True
            ).order_by("id")
        ]
        rows.bulk_create(copies, batch_size=500)
        _wake_relays(using)
    return len(resent)


class _Wakeup:
    """Waits for the next commit that queued outbox rows (``LISTEN``), or a timeout.

    PostgreSQL only, on a connection of its own; anywhere else, or while that connection
    cannot be made, it just sleeps the timeout, so polling remains the fallback.
    """

    def __init__(self, using: str):
        self.using = using
        self._listener = None

    @property
    def live(self) -> bool:
        """True while listening: every commit that queues rows from now on wakes :meth:`wait`."""
        return self._listener is not None

    def wait(self, timeout: float, *, stop: threading.Event) -> None:
        listener = self._connect()
        if listener is None:
            stop.wait(timeout)
            return
        try:
            # A LISTEN that misses a notification costs at most this long a delay.
            for _ in listener.notifies(timeout=max(timeout, 0.5), stop_after=1):
                break
            # Commits made while the relay was busy each left one: the next look covers
            # them all, so take them now rather than waking once per commit.
            for _ in listener.notifies(timeout=0):
                pass
        except Exception as error:  # the database went away: fall back, reconnect later
            logger.info("outbox wake-up channel lost", extra={"error": repr(error)[:200]})
            self.close()
            stop.wait(timeout)

    def _connect(self):
        if self._listener is not None:
            return self._listener
        if connections[self.using].vendor != "postgresql":
            return None
        import psycopg

        params = connections[self.using].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        params.pop("prepare_threshold", None)
        try:
            self._listener = psycopg.connect(**params, autocommit=True)
            self._listener.execute(f"LISTEN {WAKE_CHANNEL}")
        except Exception as error:
            logger.info("outbox wake-up channel unavailable", extra={"error": repr(error)[:200]})
            self.close()
        return self._listener

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None
