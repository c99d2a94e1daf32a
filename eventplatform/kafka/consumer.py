"""The consumer runtime: every consumer command is a declared :class:`BatchConsumer` run here.

A module says *what* it consumes and *what one batch means*; the runtime owns the rest:

- the poll loop and batching;
- committing only after a batch's effects are durable (optionally storing offsets in the
  handler's database inside the batch's transaction, and seeking to them on assignment);
- bounded retries with backoff, then a record-by-record fallback so one bad record never
  stalls its partition, and poison records to ``<topic>.dlq``;
- outages (database, Redis or broker unreachable: :func:`~.retry.is_outage`) retried
  without bound: the partition waits, nothing is dead-lettered for an outage. While a batch
  waits its partitions are paused and the loop keeps polling, so the member keeps its
  place in the group however long the outage lasts;
- an event of a newer major version than the consumer knows pauses its partition until an
  upgraded consumer takes over (nothing is skipped or dead-lettered);
- offsets that cannot skip history: a partition with no stored offset starts at the
  beginning, a stored offset outside the log (topic recreated, broker replaced) is reset to
  the beginning loudly, and offsets are only ever written for partitions still owned;
- graceful SIGTERM/SIGINT: finish the batch, commit, leave the group;
- structured logs with throughput and lag.
"""

import contextlib
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, transaction
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import (
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)
from prometheus_client import Counter, Gauge

from .catch_up import EndOfLog
from .config import consumer_options, fetch_max_wait_ms, topic_name
from .dlq import dead_letter
from .envelope import NewerMajorVersion, PoisonRecord
from .offsets import load_offsets, store_offsets
from .producer import wait_all
from .retry import RetryPolicy, is_outage
from .topic_identity import IDENTITY_CHECK_SECONDS, refresh_topic_metadata, topic_id
from .topics import TopicMissing, check_topics

logger = logging.getLogger("eventplatform.consumer")

#: How long the progress report waits for the partitions' end offsets before it reports
#: the lag as unknown.
LAG_TIMEOUT_MS = 2_000
#: How often a consumer whose offsets live in its database copies them to the group. That
#: copy positions nothing (assignment seeks to the stored offsets); it only lets Kafka's
#: own tools see the group's progress, so a round trip per batch would buy nothing.
GROUP_COMMIT_SECONDS = 5.0
#: How long a stopping consumer tries to commit what is left before it leaves anyway.
STOP_COMMIT_TIMEOUT_MS = 5000

# Figures of the consumers running in this process, for its /metrics.
OFFSET_RESETS = Counter(
    "eventplatform_consumer_offset_resets",
    "Partitions replayed from the start because a stored offset was unusable",
    ["consumer"],
)
PAUSED_PARTITIONS = Gauge(
    "eventplatform_consumer_paused_partitions",
    "Partitions paused at an event of a newer major version than the consumer knows",
    ["consumer"],
)
RETRIES = Counter(
    "eventplatform_consumer_retries", "Waits before retrying a batch or an outage", ["consumer"]
)
DEAD_LETTERED = Counter(
    "eventplatform_consumer_dead_lettered", "Records sent to a dead-letter topic", ["consumer"]
)


@dataclass(frozen=True)
class Message:
    """A consumed record and its decoded value."""

    record: ConsumerRecord
    value: Any

    @property
    def key(self) -> str | None:
        key = self.record.key
        return key.decode("utf-8", "replace") if isinstance(key, bytes) else key

    @property
    def headers(self) -> dict[str, bytes]:
        return dict(self.record.headers or [])


def group_id_of(consumer_name: str) -> str:
    """The consumer group of the consumer named ``consumer_name`` (under the topic prefix)."""
    return topic_name(f"group.{consumer_name}")


class BatchConsumer:
    """Declare a consumer by subclassing: ``name``, ``topics`` and :meth:`handle_batch`.

    Set ``database`` to run each batch in a transaction on that alias, and
    ``store_offsets_in_database`` to keep offsets in that same transaction.
    """

    name: str = ""
    topics: tuple[str, ...] = ()
    database: str | None = None
    store_offsets_in_database: bool = False
    max_batch_size: int = 500
    #: Someone is waiting to see these records (e.g. live progress): fetch with the short
    #: interactive wait where the broker does not answer a waiting fetch at once.
    interactive: bool = False

    @property
    def group_id(self) -> str:
        return group_id_of(self.name)

    def decode(self, record: ConsumerRecord) -> Any:
        """Turn a record into the handler's value; raise :class:`PoisonRecord` if impossible."""
        return record.value

    def handle_batch(self, messages: list[Message]) -> None:
        """Apply one batch. Must be idempotent: a batch may be redelivered after a crash."""
        raise NotImplementedError

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Hook called after partitions are assigned (and stored offsets sought)."""

    #: Seconds between calls of :meth:`periodic`.
    periodic_seconds: float = 30.0

    def periodic(self) -> None:
        """Housekeeping the consumer does now and then, between batches (e.g. sweeping)."""


@dataclass
class RuntimeStats:
    """Figures a run reports in its logs and to callers (benchmarks, tests)."""

    records: int = 0
    batches: int = 0
    dead_lettered: int = 0
    retries: int = 0
    offset_resets: int = 0
    paused_partitions: int = 0
    started_at: float = field(default_factory=time.monotonic)
    lag: int | None = None

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.records / elapsed if elapsed > 0 else 0.0


class _SeekToStoredOffsets(ConsumerRebalanceListener):
    def __init__(self, runtime: "ConsumerRuntime"):
        self.runtime = runtime

    def on_partitions_revoked(self, revoked):
        logger.info(
            "partitions revoked",
            extra={"consumer": self.runtime.consumer.name, "partitions": _names(revoked)},
        )

    def on_partitions_assigned(self, assigned):
        self.runtime._on_assigned(list(assigned))


# A commit the group refuses because it is rebalancing (kafka-python 3 raises the broker's
# own error while the member rejoins, CommitFailedError once it has been evicted).
REFUSED_BY_A_REBALANCE = (
    CommitFailedError,
    IllegalGenerationError,
    RebalanceInProgressError,
    UnknownMemberIdError,
)


def _resume_stalled_join(kafka: KafkaConsumer) -> None:
    """Let the next poll finish a group join that kafka-python 3.0 would otherwise abandon.

    When a poll's time runs out during a rejoin started because the topics' metadata
    changed, the leader's own assignment makes ``need_rejoin()`` false before SyncGroup has
    answered; later polls then never collect the join, and the member holds no partitions
    while the group believes it has them (seen on Apache Kafka right after topics are
    created). Marking the rejoin as needed makes the next poll await the join already in
    flight; it sends nothing new.
    """
    coordinator = getattr(kafka, "_coordinator", None)
    if getattr(coordinator, "_join_task", None) is not None and not coordinator.need_rejoin():
        coordinator.rejoin_needed = True


@contextlib.contextmanager
def _start_up_objects_frozen():
    """Keep the cyclic garbage collector off what start-up built, while the loop runs.

    A batch keeps thousands of decoded records alive until it is applied, so full
    collections come often, and each would walk every object that Django, the apps and
    the client made at start-up (some 150,000, alive as long as the process): frozen,
    they are skipped. Unfrozen when the loop ends, so a runtime run inside a longer-lived
    process (a test) leaves the collector as it was.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _names(partitions) -> str:
    return ",".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions))


class ConsumerRuntime:
    """Runs a :class:`BatchConsumer` until asked to stop."""

    def __init__(
        self,
        consumer: BatchConsumer,
        *,
        max_retries: int = 3,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
        poll_timeout_ms: int = 200,
        report_every_seconds: float = 10.0,
    ):
        self.consumer = consumer
        self.retry = RetryPolicy(
            max_attempts=max_retries,
            initial_delay=backoff_seconds,
            max_delay=max_backoff_seconds,
        )
        self.poll_timeout_ms = poll_timeout_ms
        self.report_every_seconds = report_every_seconds
        self.stats = RuntimeStats()
        self._stop = threading.Event()
        self._kafka: KafkaConsumer | None = None
        self.assigned = threading.Event()
        self.last_poll_empty = False
        self._blocked: set[TopicPartition] = set()  # paused for a newer major version
        self._pending_positions: set[TopicPartition] = set()  # assigned, not yet sought
        self._known_topic_ids: dict[str, str] = {}  # topic -> id when last positioned
        self._to_commit: dict[TopicPartition, OffsetAndMetadata] = {}  # applied, uncommitted
        self._group_commit_due = 0.0  # monotonic time of the next copy of stored offsets

    # -- lifecycle ---------------------------------------------------------------------

    def request_stop(self, *_signal_args) -> None:
        """Ask the loop to finish the current batch, commit and leave the group."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, *, until: Callable[["ConsumerRuntime"], bool] | None = None) -> RuntimeStats:
        """Poll and process until :meth:`request_stop` (or ``until(self)`` is true).

        Raises :class:`~.topics.TopicShapeMismatch` if a topic exists with another shape
        than declared; waits (logging) while a topic does not exist yet.
        """
        if not self._wait_for_topics():
            return self.stats
        self._kafka = KafkaConsumer(
            **consumer_options(),
            group_id=self.consumer.group_id,
            client_id=f"{self.consumer.name}",
            enable_auto_commit=False,
            # Offsets kept in a database are positioned by the runtime, and an out-of-range
            # one must be reported, not silently reset; group offsets start at the beginning.
            auto_offset_reset="none" if self.consumer.store_offsets_in_database else "earliest",
            max_poll_records=self.consumer.max_batch_size,
            fetch_max_wait_ms=fetch_max_wait_ms(interactive=self.consumer.interactive),
            session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=settings.KAFKA_HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=settings.KAFKA_MAX_POLL_INTERVAL_MS,
        )
        topics = [topic_name(t) for t in self.consumer.topics]
        # Load the topics' metadata first: a member that joins without it is assigned
        # nothing (a topic created a moment ago), and the group may not assign again.
        for topic in topics:
            self._kafka.partitions_for_topic(topic)
        self._kafka.subscribe(topics, listener=_SeekToStoredOffsets(self))
        logger.info(
            "consumer started",
            extra={
                "consumer": self.consumer.name,
                "group": self.consumer.group_id,
                "topics": ",".join(topics),
            },
        )
        try:
            with _start_up_objects_frozen():
                self._loop(until)
        finally:
            self._report()
            if self._to_commit:
                self._commit_pending(timeout_ms=STOP_COMMIT_TIMEOUT_MS)
            # close() leaves the group so the partitions move to a peer at once.
            self._kafka.close(autocommit=False)
            self._kafka = None
            connections.close_all()  # this thread's connections; the runtime may run in one
            logger.info("consumer stopped", extra={"consumer": self.consumer.name})
        return self.stats

    def _loop(self, until: Callable[["ConsumerRuntime"], bool] | None) -> None:
        last_report = last_identity_check = last_periodic = time.monotonic()
        while not self._stop.is_set() and not (until and until(self)):
            batches = self._poll(self.poll_timeout_ms, self.consumer.max_batch_size)
            if self._to_commit and self._group_commit_is_due():
                self._commit_pending()
            positioned = self._position_pending() if self._pending_positions else set()
            records = [r for tp in sorted(batches) if tp not in positioned for r in batches[tp]]
            self.last_poll_empty = not records
            if records:
                processed = self._process_batch(records)
                if processed is None:
                    return  # stopped during an outage: nothing committed, all redelivered
                self._commit(processed)
            if time.monotonic() - last_periodic >= self.consumer.periodic_seconds:
                self._run_periodic()
                last_periodic = time.monotonic()
            if time.monotonic() - last_identity_check >= IDENTITY_CHECK_SECONDS:
                self._check_topic_identity()
                last_identity_check = time.monotonic()
            if time.monotonic() - last_report >= self.report_every_seconds:
                self._report()
                last_report = time.monotonic()

    def _wait_for_topics(self) -> bool:
        """Wait until the consumed topics exist; False if stopped first."""
        attempt = 0
        while True:
            try:
                check_topics(list(self.consumer.topics))
                return True
            except TopicMissing as error:
                problem = error
            except KafkaError as error:
                if not is_outage(error):
                    raise
                problem = error
            delay = self.retry.delay(attempt)
            logger.warning(
                "waiting for topics",
                extra={"consumer": self.consumer.name, "problem": str(problem), "delay_s": delay},
            )
            if self._stop.wait(delay):
                return False
            attempt += 1

    def assignment(self) -> set[TopicPartition]:
        """The partitions this member holds right now."""
        return self._kafka.assignment() if self._kafka is not None else set()

    def end_of_log(self) -> EndOfLog:
        """The "read to the end" goal over this member's current assignment."""
        return EndOfLog(self._kafka, self._kafka.assignment())

    def blocked_partitions(self) -> set[TopicPartition]:
        """The partitions paused at an event of a newer major version than the consumer
        knows: they go no further until code that reads it is deployed."""
        return set(self._blocked)

    # -- assignment --------------------------------------------------------------------

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        # Runs on the client's IO thread, which must not block: partitions that start from
        # stored offsets are paused here and positioned by the loop (_position_pending).
        if self.consumer.store_offsets_in_database and partitions:
            self._pending_positions |= set(partitions)
            self._kafka.pause(*partitions)
        for tp in self._blocked & set(partitions):
            self._kafka.pause(tp)  # still holds an event this consumer cannot read
        logger.info(
            "partitions assigned",
            extra={"consumer": self.consumer.name, "partitions": _names(partitions)},
        )
        self.consumer.on_assigned(partitions)
        if not self._pending_positions:
            self.assigned.set()

    def _position_pending(self) -> set[TopicPartition]:
        """Seek newly assigned partitions to their stored offsets, then let them fetch."""
        owned = self._kafka.assignment()
        self._pending_positions &= owned
        partitions = sorted(self._pending_positions)
        if partitions:
            # They stay pending (paused, without a position) until the seek is done: a
            # database outage meanwhile is waited out by polling, which must skip them.
            self._seek_to_stored_offsets(partitions)
            self._pending_positions -= set(partitions)
            # A rebalance while a database outage was waited out may have taken some away,
            # and the client refuses to resume a partition it no longer holds.
            owned = self._kafka.assignment()
            partitions = [tp for tp in partitions if tp in owned]
            for topic in {tp.topic for tp in partitions}:
                self._known_topic_ids[topic] = self._topic_id(topic)
            self._kafka.resume(*(set(partitions) - self._blocked))
        self.assigned.set()
        return set(partitions)

    def _seek_to_stored_offsets(self, partitions: list[TopicPartition]) -> None:
        """Start each partition at its stored offset; from the beginning when that is unsafe.

        The group's commit is never trusted here: the stored offsets live with the effects,
        so an emptied or restored database must replay, not resume where Kafka says.
        """
        attempt = 0
        while True:
            try:
                close_old_connections()
                stored = load_offsets(
                    database=self.consumer.database,
                    group=self.consumer.group_id,
                    partitions=partitions,
                )
                break
            except DatabaseError as error:
                if not is_outage(error) or not self._wait(attempt, error):
                    raise
                attempt += 1
        # A rebalance while the database was awaited may have taken some away.
        partitions = [tp for tp in partitions if tp in self._kafka.assignment()]
        if not partitions:
            return
        beginnings = self._kafka.beginning_offsets(partitions)
        # A short high watermark (embedded broker) cannot prove an offset is past the end;
        # there the fetch itself reports it (see _replay_out_of_range).
        ends = {} if settings.KAFKA_SHORT_HIGH_WATERMARK else self._kafka.end_offsets(partitions)
        for tp in partitions:
            row = stored.get(tp)
            if row is None:
                self._kafka.seek(tp, beginnings[tp])
                continue
            current_id = self._topic_id(tp.topic)
            if row.topic_id and current_id and row.topic_id != current_id:
                problem = f"the topic was recreated (id {row.topic_id} is now {current_id})"
            elif row.next_offset < beginnings[tp]:
                problem = f"offset {row.next_offset} is below the log start {beginnings[tp]}"
            elif tp in ends and row.next_offset > ends[tp]:
                problem = f"offset {row.next_offset} is beyond the log end {ends[tp]}"
            else:
                self._kafka.seek(tp, row.next_offset)
                continue
            self._replay_from_start(tp, problem)

    def _replay_from_start(self, tp: TopicPartition, problem: str) -> None:
        """Reset a partition whose stored position cannot be trusted, loudly."""
        self.stats.offset_resets += 1
        OFFSET_RESETS.labels(self.consumer.name).inc()
        logger.error(
            "stored offset unusable: replaying the partition from its start",
            extra={
                "consumer": self.consumer.name,
                "partition": f"{tp.topic}[{tp.partition}]",
                "problem": problem,
            },
        )
        self._kafka.seek_to_beginning(tp)

    def _replay_out_of_range(self, error: OffsetOutOfRangeError) -> None:
        positions = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        for tp, offset in positions.items():
            self._replay_from_start(tp, f"offset {offset} is outside the log (broker said)")

    def _run_periodic(self) -> None:
        """The consumer's housekeeping; a failure is logged and tried again next time."""
        try:
            close_old_connections()
            self.consumer.periodic()
        except Exception as error:
            logger.warning(
                "periodic work failed",
                extra={"consumer": self.consumer.name, "error": repr(error)[:500]},
            )

    def _check_topic_identity(self) -> None:
        """Replay partitions whose topic was deleted and recreated under this member.

        A recreated topic's log starts again at 0, below the positions held, and not every
        broker reports that as out of range; its new id gives it away.
        """
        if not self._known_topic_ids:
            return
        try:
            refresh_topic_metadata(self._kafka)
        except KafkaError as error:
            logger.info(
                "topic identity not checked this time",
                extra={"consumer": self.consumer.name, "error": repr(error)[:500]},
            )
            return
        for topic, known in list(self._known_topic_ids.items()):
            current = self._topic_id(topic)
            if known and current and current != known:
                self._known_topic_ids[topic] = current
                for tp in sorted(self._kafka.assignment()):
                    if tp.topic == topic:
                        self._replay_from_start(tp, f"the topic was recreated (id now {current})")

    def _topic_id(self, topic: str) -> str:
        """The topic's id from the client's metadata ("" if the broker gives none)."""
        return topic_id(self._kafka, topic)

    def _owned(self, records: list[ConsumerRecord]) -> list[ConsumerRecord]:
        """The records whose partitions this member still owns (after a wait, it may not)."""
        if self._kafka is None:
            return records
        owned = self._kafka.assignment()
        # A TopicPartition equals the plain (topic, partition) tuple, which is cheaper to make.
        if {(r.topic, r.partition) for r in records} <= owned:
            return records  # the usual case: nothing moved
        return [r for r in records if (r.topic, r.partition) in owned]

    # -- processing --------------------------------------------------------------------

    def _decode(self, records: list[ConsumerRecord]):
        """Decode a batch into messages and poison; stop a partition at a newer major version."""
        messages, poison, kept = [], [], []
        blocked: set[TopicPartition] = set()
        decode = self.consumer.decode
        for record in records:
            if blocked and (record.topic, record.partition) in blocked:
                continue
            try:
                messages.append(Message(record, decode(record)))
            except NewerMajorVersion as error:
                tp = TopicPartition(record.topic, record.partition)
                blocked.add(tp)
                self._block(tp, record, error)
                continue
            except PoisonRecord as error:
                poison.append((record, str(error)))
            except Exception as error:
                # A decoder that fails in any other way still says "this record is unreadable".
                poison.append((record, f"{type(error).__name__}: {error}"))
            kept.append(record)
        return messages, poison, kept

    def _block(self, tp: TopicPartition, record: ConsumerRecord, error: Exception) -> None:
        self._blocked.add(tp)
        self.stats.paused_partitions = len(self._blocked)
        PAUSED_PARTITIONS.labels(self.consumer.name).set(len(self._blocked))
        if self._kafka is not None:
            self._kafka.seek(tp, record.offset)
            self._kafka.pause(tp)
        logger.error(
            "partition paused: event of a newer major version than this consumer knows",
            extra={
                "consumer": self.consumer.name,
                "partition": f"{tp.topic}[{tp.partition}]",
                "offset": record.offset,
                "error": str(error),
            },
        )

    def _process_batch(self, records: list[ConsumerRecord]) -> list[ConsumerRecord] | None:
        """Apply a batch; return the records done, or None if stopped before completing."""
        messages, poison, records = self._decode(records)
        if poison:
            if not self._retry_forever(lambda: self._dead_letter_all(poison)):
                return None
            messages, records = self._still_owned(messages, records)
        attempt = 0
        while True:
            try:
                self._apply(messages, offsets_of=records)
                self.stats.records += len(records)
                self.stats.batches += 1
                return records
            except Exception as error:
                if self.retry.gives_up(attempt, error):
                    logger.warning(
                        "batch failed, falling back to record by record",
                        extra={
                            "consumer": self.consumer.name,
                            "error": repr(error),
                            "size": len(messages),
                        },
                    )
                    return records if self._process_one_by_one(messages, records) else None
                if not self._wait(attempt, error):
                    return None
                messages, records = self._still_owned(messages, records)
            attempt += 1

    def _still_owned(self, messages: list[Message], records: list[ConsumerRecord]):
        records = self._owned(records)
        kept = {(r.topic, r.partition, r.offset) for r in records}
        messages = [
            m for m in messages if (m.record.topic, m.record.partition, m.record.offset) in kept
        ]
        return messages, records

    def _process_one_by_one(self, messages: list[Message], records: list[ConsumerRecord]) -> bool:
        """Apply each message in its own transaction, dead-lettering those that keep failing;
        then store the offsets of the whole batch, the dead-lettered records included."""
        for message in messages:
            if not self._owned([message.record]):
                continue  # moved to another member while this one waited
            attempt = 0
            while True:
                try:
                    self._apply([message], offsets_of=[message.record])
                    break
                except Exception as error:
                    if self.retry.gives_up(attempt, error):
                        failure = [(message.record, f"{type(error).__name__}: {error}")]
                        if not self._retry_forever(lambda f=failure: self._dead_letter_all(f)):
                            return False
                        break
                    if not self._wait(attempt, error):
                        return False
                attempt += 1
            self.stats.records += 1
        self.stats.batches += 1
        if self.consumer.store_offsets_in_database:
            return self._retry_forever(lambda: self._apply([], offsets_of=records))
        return True

    def _apply(self, messages: list[Message], *, offsets_of: list[ConsumerRecord]) -> None:
        database = self.consumer.database
        if database is None:
            if messages:
                self.consumer.handle_batch(messages)
            return
        close_old_connections()
        with transaction.atomic(using=database):
            if messages:
                self.consumer.handle_batch(messages)
            if self.consumer.store_offsets_in_database:
                owned = self._owned(offsets_of)
                store_offsets(
                    database=database,
                    group=self.consumer.group_id,
                    records=owned,
                    topic_ids={t: self._topic_id(t) for t in {r.topic for r in owned}},
                )

    def _dead_letter_all(self, failures: list[tuple[ConsumerRecord, str]]) -> None:
        failures = [(r, e) for r, e in failures if self._owned([r])]
        futures = [dead_letter(r, error=e, consumer=self.consumer.name) for r, e in failures]
        wait_all(futures)
        for record, error in failures:
            logger.error(
                "record sent to DLQ",
                extra={
                    "consumer": self.consumer.name,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "error": error,
                },
            )
        self.stats.dead_lettered += len(failures)
        DEAD_LETTERED.labels(self.consumer.name).inc(len(failures))
        # Their offsets are stored with the batch they came in, never before it: a stored
        # offset past them would also be past the batch's records not yet applied.

    def _retry_forever(self, action: Callable[[], None]) -> bool:
        """Run ``action`` until it succeeds (it only fails by outage); False if stopped."""
        attempt = 0
        while True:
            try:
                action()
                return True
            except (KafkaError, DatabaseError) as error:
                if not self._wait(attempt, error):
                    return False
            attempt += 1

    def _wait(self, attempt: int, error: BaseException) -> bool:
        """Back off before a retry, keeping the group; return False if stopped meanwhile."""
        self.stats.retries += 1
        RETRIES.labels(self.consumer.name).inc()
        delay = self.retry.delay(attempt)
        logger.warning(
            "retrying after error",
            extra={
                "consumer": self.consumer.name,
                "attempt": attempt + 1,
                "delay_s": round(delay, 3),
                "outage": is_outage(error),
                "error": repr(error)[:500],
            },
        )
        return self._idle(delay)

    def _poll(self, timeout_ms: int, max_records: int | None = None) -> dict:
        """One poll; partitions without a valid position yield nothing this time."""
        _resume_stalled_join(self._kafka)
        try:
            return self._kafka.poll(timeout_ms=timeout_ms, max_records=max_records)
        except OffsetOutOfRangeError as error:
            self._replay_out_of_range(error)
        except NoOffsetForPartitionError as error:
            # Partitions still pending get their stored offsets from _position_pending; any
            # other partition without a position starts from the beginning.
            unpositioned = set(error.args[0]) if error.args else set()
            for tp in unpositioned - self._pending_positions:
                self._kafka.seek_to_beginning(tp)
            if unpositioned <= self._pending_positions:
                self._stop.wait(min(timeout_ms, 100) / 1000)  # the poll returned at once
        return {}

    def _idle(self, seconds: float) -> bool:
        """Wait ``seconds`` while polling with every partition paused.

        Polling is what keeps a member in its group (``max.poll.interval.ms``); paused
        partitions return nothing. A partition assigned meanwhile is not paused yet, so
        anything it returns is given back by seeking to its first offset.
        """
        if self._kafka is None:
            return not self._stop.wait(seconds)
        deadline = time.monotonic() + seconds
        self._kafka.pause(*self._kafka.assignment())
        try:
            while not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True
                returned = self._poll(max(1, int(min(remaining, 0.5) * 1000)))
                for tp, records in returned.items():
                    if records:
                        self._kafka.seek(tp, records[0].offset)
                    self._kafka.pause(tp)
            return False
        finally:
            waiting = self._blocked | self._pending_positions
            self._kafka.resume(*(set(self._kafka.paused()) - waiting))

    # -- commits and figures -----------------------------------------------------------

    def _commit(self, records: list[ConsumerRecord]) -> None:
        # A batch holds each partition's records in offset order: the last one is the latest.
        last = {(r.topic, r.partition): r.offset for r in records}
        for (topic, partition), offset in last.items():
            self._to_commit[TopicPartition(topic, partition)] = OffsetAndMetadata(
                offset + 1, "", -1
            )
        if self._group_commit_is_due():
            self._commit_pending()

    def _group_commit_is_due(self) -> bool:
        """Whether to commit now: each batch, unless the offsets are a copy of stored ones."""
        if not self.consumer.store_offsets_in_database:
            return True
        now = time.monotonic()
        if now < self._group_commit_due:
            return False
        self._group_commit_due = now + GROUP_COMMIT_SECONDS
        return True

    def _commit_pending(self, *, timeout_ms: int | None = None) -> None:
        """Commit what was applied, for the partitions this member still owns.

        A commit refused because the group rebalanced meanwhile is tried again after the
        next poll: when the partitions came back to this member nothing redelivers them,
        so the offsets would otherwise stay uncommitted until new records arrive. With
        ``timeout_ms`` (a member leaving) any failure is logged, and what it did not
        commit is redelivered after a restart, as after a crash.
        """
        owned = self._kafka.assignment()
        offsets = {tp: o for tp, o in self._to_commit.items() if tp in owned}
        self._to_commit = offsets
        if not offsets:
            return
        stopping = timeout_ms is not None
        try:
            self._kafka.commit(offsets, timeout_ms=timeout_ms)
            self._to_commit = {}
        except KafkaError as error:
            if not stopping and not isinstance(error, REFUSED_BY_A_REBALANCE):
                raise
            logger.warning(
                "commit failed while stopping"
                if stopping
                else "commit failed after rebalance; retried after the next poll",
                extra={"consumer": self.consumer.name, "error": repr(error)},
            )

    def lag(self) -> int | None:
        """Records between this consumer's positions and the ends of its partitions."""
        if self._kafka is None:
            return None
        assignment = self._kafka.assignment()
        if not assignment:
            return None
        try:
            # Bounded: the client's default (its request timeout, minutes) would hold the
            # loop, and a stop, for as long while the broker is away.
            ends = self._kafka.end_offsets(list(assignment), timeout_ms=LAG_TIMEOUT_MS)
            return sum(
                max(0, ends[tp] - self._kafka.position(tp, timeout_ms=LAG_TIMEOUT_MS))
                for tp in assignment
            )
        except KafkaError:
            return None

    def _report(self) -> None:
        self.stats.lag = self.lag()
        logger.info(
            "consumer progress",
            extra={
                "consumer": self.consumer.name,
                "records": self.stats.records,
                "batches": self.stats.batches,
                "dead_lettered": self.stats.dead_lettered,
                "retries": self.stats.retries,
                "offset_resets": self.stats.offset_resets,
                "paused_partitions": self.stats.paused_partitions,
                "records_per_s": round(self.stats.rate, 1),
                "lag": self.stats.lag,
            },
        )
