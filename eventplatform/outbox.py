"""Transactional outbox: write events with the change, relay them to Kafka afterwards.

:func:`publish` inserts a row in the caller's transaction, so an event exists if and only if
the change it reports committed. :class:`OutboxRelay` sends unsent rows in id order, marks
them sent only after the broker acknowledged them, and keeps retrying while the broker is
down. Two relays may run at once on PostgreSQL: each locks its rows with
``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from kafka.errors import KafkaError

from .kafka.config import topic_name
from .kafka.envelope import Event
from .kafka.producer import reset_producer, send, wait_all
from .models import OutboxEvent

logger = logging.getLogger("eventplatform.outbox")


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
    if not connections[using].in_atomic_block:
        raise OutsideTransaction("publish() must run inside transaction.atomic()")
    value = event.encode() if isinstance(event, Event) else event
    return OutboxEvent.objects.using(using).create(
        topic=topic, key=key, value=value, headers=headers or {}
    )


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
        using: str = DEFAULT_DB_ALIAS,
    ):
        self.batch_size = batch_size
        self.idle_interval = idle_interval
        self.max_backoff = max_backoff
        self.retention = retention or timedelta(seconds=settings.OUTBOX_RETENTION_SECONDS)
        self.prune_every = prune_every
        self.using = using
        self.sent = 0
        self._stop = threading.Event()

    def request_stop(self, *_signal_args) -> None:
        self._stop.set()

    def run(self) -> None:
        """Relay until stopped: wake every ``idle_interval`` (50 ms) when there is nothing."""
        try:
            self._loop()
        finally:
            connections[self.using].close()  # the relay may run in a thread of its own

    def _loop(self) -> None:
        failures = 0
        last_prune = 0.0
        while not self._stop.is_set():
            try:
                sent = self.relay_once()
                failures = 0
            except (KafkaError, TimeoutError) as error:
                failures += 1
                delay = min(0.1 * 2**failures, self.max_backoff)
                logger.warning(
                    "broker unavailable, outbox rows kept for retry",
                    extra={"error": repr(error)[:300], "retry_in_s": delay},
                )
                reset_producer()
                self._stop.wait(delay)
                continue
            if time.monotonic() - last_prune >= self.prune_every:
                self.prune()
                last_prune = time.monotonic()
            if not sent:
                self._stop.wait(self.idle_interval)

    def relay_once(self) -> int:
        """Send one batch of unsent rows in id order; return how many were sent."""
        with transaction.atomic(using=self.using):
            rows = list(
                OutboxEvent.objects.using(self.using)
                .filter(sent_at__isnull=True)
                .order_by("id")
                .select_for_update(skip_locked=True)[: self.batch_size]
            )
            if not rows:
                return 0
            futures = [
                send(
                    topic_name(row.topic),
                    key=row.key,
                    value=bytes(row.value) if row.value is not None else None,
                    headers=row.headers,
                )
                for row in rows
            ]
            # Raises on any delivery failure: the transaction rolls back, rows stay unsent.
            wait_all(futures)
            OutboxEvent.objects.using(self.using).filter(id__in=[row.id for row in rows]).update(
                sent_at=timezone.now()
            )
        self.sent += len(rows)
        return len(rows)

    def prune(self) -> int:
        """Delete rows sent longer ago than the retention period."""
        cutoff = timezone.now() - self.retention
        deleted, _ = OutboxEvent.objects.using(self.using).filter(sent_at__lt=cutoff).delete()
        if deleted:
            logger.info("outbox pruned", extra={"rows": deleted})
        return deleted
