"""How an outbox relay sends on PostgreSQL: one relay at a time streams batch after batch.

The relay holding the relays' advisory lock sends a batch once the one before it was
acknowledged, so every key's rows reach the broker in id order. The lock is held by the
session: it outlives the commits of a streak's batches, and goes with the connection if
the process dies. The database work for a batch (marking the batch before it sent,
selecting the batch after it) is queued in psycopg's pipeline mode before the batch is
handed to the producer: PostgreSQL does that work on its own while this process sends,
and its answer is read while the broker acknowledges.

A relay killed between a batch's acknowledgement and its record sends it again, with the
batch after it if that one had left already: at least once, as the outbox promises.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from django.db import DatabaseError, connections

from .models import OutboxEvent
from .outbox_batch import OutboxBatch, Row
from .outbox_topics import HeldTopics

#: Any number stable across processes: the key of the relays' advisory lock.
RELAY_LOCK_KEY = 0x6F7574626F78  # "outbox"


@dataclass
class Streak:
    """What one streak did."""

    handled: int = 0
    #: It stopped (asked to, or out of time) before it ran out of rows.
    cut_short: bool = False


class OutboxStream:
    """Streaks of batches of ``batch_size`` rows, each at most ``streak_seconds`` long (so
    the relay's pruning and its held topics' recheck still get their turn).
    ``on_recorded`` is given each batch once its record is committed."""

    def __init__(
        self,
        *,
        using: str,
        batch_size: int,
        topics: HeldTopics,
        stop: threading.Event,
        streak_seconds: float,
        on_recorded: Callable[[OutboxBatch], None],
    ):
        self.using = using
        self.batch_size = batch_size
        self.streak_seconds = streak_seconds
        self._topics = topics
        self._stop = stop
        self._on_recorded = on_recorded

    def streak(self) -> Streak:
        """Send rows until none is left, the relay is asked to stop, or time is up."""
        streak = Streak()
        if not self._try_lock():
            return streak  # another relay is streaming: it takes every row there is
        try:
            deadline, previous = time.monotonic() + self.streak_seconds, None
            rows = self._database_step(record=None, in_flight=[])
            while rows:
                batch = OutboxBatch(rows, topics=self._topics, using=self.using)
                streak.handled += len(rows)
                streak.cut_short = self._stop.is_set() or time.monotonic() >= deadline
                rows = self._database_step(
                    record=previous,
                    in_flight=None if streak.cut_short else batch.ids,
                    meanwhile=batch.send,
                )
                if previous is not None:
                    self._on_recorded(previous)
                # Mostly in already: they came back while the selected rows were read.
                batch.await_acks()
                previous = batch
            if previous is not None:
                self._database_step(record=previous, in_flight=None)
                self._on_recorded(previous)
        finally:
            _release_lock(self.using)
        return streak

    def _try_lock(self) -> bool:
        """Take the relays' lock if it is free. Not waited for, so a relay that does not
        get it is free to stop; and taken before any select, so a standby relay woken by
        every commit reads no rows that are not its to send."""
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [RELAY_LOCK_KEY])
            return cursor.fetchone()[0]

    def _database_step(
        self,
        *,
        record: OutboxBatch | None,
        in_flight: list[int] | None,
        meanwhile: Callable[[], object] | None = None,
    ) -> list[Row]:
        """Record the acknowledged batch ``record``, then select the rows after those
        ``in_flight`` (none if ``None``); ``meanwhile`` runs while PostgreSQL does both.

        The statements share one implicit transaction, committed when the rows are read,
        or the caller's transaction if it has one. A failure surfaces as Django's database
        errors, so an outage is still waited out.
        """
        if record is None and in_flight is None:
            if meanwhile is not None:
                meanwhile()
            return []
        connection = connections[self.using]
        connection.ensure_connection()
        with connection.wrap_database_errors, connection.connection.pipeline():
            # Parameters bound on the server: the id list goes over as one array.
            cursor = psycopg.Cursor(connection.connection)
            if record is not None:
                # Not worth waiting for the disk: a mark lost to a crash of the database
                # only sends its rows again, which at-least-once allows.
                cursor.execute("SELECT set_config('synchronous_commit', 'off', true)")
                for sql, params in record.record_statements():
                    cursor.execute(sql, params)
            select = None
            if in_flight is not None:
                select = psycopg.Cursor(connection.connection)
                # Its parameters are read before ``meanwhile`` may hold another topic back.
                select.execute(_SELECT_UNSENT, self._select_params(in_flight=in_flight))
            if meanwhile is not None:
                meanwhile()
            rows = select.fetchall() if select is not None else []
        if record is not None:
            record.log_set_aside()
        return _as_rows(rows)

    def _select_params(self, *, in_flight: list[int]) -> list:
        return [sorted(self._topics.held), in_flight, self.batch_size]


#: The next unsent rows of the topics not held back, leaving out exactly those in flight.
#: Not their id range: a row committed late with an id inside it would wait for the batch
#: after next, while a later row of its key (whose writer waited for that commit, so it
#: holds a higher id) could go in the next one, and compaction would then keep the older.
_SELECT_UNSENT = (
    "SELECT id, topic, key, value, headers"
    f" FROM {OutboxEvent._meta.db_table}"
    " WHERE sent_at IS NULL AND set_aside_at IS NULL"
    " AND topic <> ALL(%s::text[]) AND id <> ALL(%s::bigint[])"
    " ORDER BY id LIMIT %s"
)


def _as_rows(rows: list[tuple]) -> list[Row]:
    # The connection hands jsonb over as text.
    return [
        (row_id, topic, key, value, json.loads(headers) if headers is not None else None)
        for row_id, topic, key, value, headers in rows
    ]


def _release_lock(using: str) -> None:
    connection = connections[using]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RELAY_LOCK_KEY])
    except DatabaseError:
        # Unreachable: the lock goes with the connection, which is closed for good
        # measure; the error that matters is the one that ended the streak.
        connection.close()
