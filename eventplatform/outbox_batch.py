"""One batch of outbox rows on its way to the broker: sent, acknowledged, then recorded.

The three steps are separate so a relay can overlap them across batches: a batch is sent
only once the one before it has been acknowledged (so every key's rows still reach the
broker in id order), and that one is recorded while its successor is on its way.
"""

import logging

from django.utils import timezone
from kafka.errors import KafkaError

from .kafka.config import topic_name
from .kafka.producer import get_producer, send
from .kafka.retry import is_refused_record
from .models import OutboxEvent
from .outbox_topics import HeldTopics

logger = logging.getLogger("eventplatform.outbox")

#: A row as a relay selects it: ``(id, topic, key, value, headers)``.
Row = tuple[int, str, str | None, bytes | memoryview | None, dict | None]


class OutboxBatch:
    """Rows in id order, and what became of each: sent, refused for good, or held back."""

    def __init__(self, rows: list[Row], *, topics: HeldTopics, using: str):
        self.rows = rows
        self.ids = [row[0] for row in rows]
        self.using = using
        self._topics = topics
        self._futures = {}
        #: Rows the broker refused because of the row itself, with the reason.
        self.refused: dict[int, str] = {}
        #: Rows that went to the broker and were acknowledged, once :meth:`await_acks` ran.
        self.sent: list[int] = []
        #: When the broker had answered for every row: their ``sent_at``, however much
        #: later they are recorded.
        self.answered_at = None

    def send(self) -> "OutboxBatch":
        """Hand every row whose topic is not held back to the producer."""
        self._topics.hold_those_not_seen_yet({row[1] for row in self.rows})
        held = set(self._topics.held)
        for row_id, topic, key, value, headers in self.rows:
            if topic in held:
                continue
            try:
                self._futures[row_id] = send(
                    topic_name(topic),
                    key=key,
                    value=bytes(value) if value is not None else None,
                    headers=headers,
                )
            except KafkaError as error:  # refused before sending, e.g. too large
                if is_refused_record(error):
                    self.refused[row_id] = f"{type(error).__name__}: {error}"
                elif self._topics.hold_if_gone(topic, error):
                    held.add(topic)  # its later rows in this batch wait too
                else:
                    raise
        return self

    def await_acks(self) -> None:
        """Wait for the broker's answer on every row sent.

        Raises when sending failed for a reason other than the row (the broker is away):
        then nothing of this batch may be recorded, and all of it is sent again later.
        """
        get_producer().flush(timeout=30)
        for row_id, future in self._futures.items():
            try:
                future.get(timeout=30)
            except KafkaError as error:
                if not is_refused_record(error):
                    raise
                self.refused[row_id] = f"{type(error).__name__}: {error}"
        self.sent = [row_id for row_id in self._futures if row_id not in self.refused]
        self.answered_at = timezone.now()

    def record(self) -> None:
        """Mark the acknowledged rows sent and set the refused ones aside, in the caller's
        transaction, through the ORM (any database)."""
        now = self.answered_at
        rows = OutboxEvent.objects.using(self.using)
        if self.sent:
            rows.filter(id__in=self.sent).update(sent_at=now)
        for row_id, error in self.refused.items():
            rows.filter(id=row_id).update(set_aside_at=now, error=error[:2000])
        self.log_set_aside()

    def record_statements(self) -> list[tuple[str, list]]:
        """:meth:`record` as PostgreSQL statements, for a caller that queues them."""
        now, table = self.answered_at, OutboxEvent._meta.db_table
        statements = []
        if self.sent:
            # One array parameter: a thousand ``IN`` placeholders cost more to bind than
            # the update itself.
            statements.append(
                (f"UPDATE {table} SET sent_at = %s WHERE id = ANY(%s)", [now, self.sent])
            )
        statements += [
            (
                f"UPDATE {table} SET set_aside_at = %s, error = %s WHERE id = %s",
                [now, error[:2000], row_id],
            )
            for row_id, error in self.refused.items()
        ]
        return statements

    def log_set_aside(self) -> None:
        for row_id, error in self.refused.items():
            logger.error(
                "outbox row refused by the broker, set aside",
                extra={"row": row_id, "error": error[:300]},
            )
