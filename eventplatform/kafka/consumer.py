"""The consumer runtime: every consumer command is a declared :class:`BatchConsumer` run here.

A module says *what* it consumes and *what one batch means*; the runtime owns the rest:

- the poll loop and batching;
- committing only after a batch's effects are durable (optionally storing offsets in the
  handler's database inside the batch's transaction, and seeking to them on assignment);
- bounded retries with backoff, then a record-by-record fallback so one bad record never
  stalls its partition, and poison records to ``<topic>.dlq``;
- infrastructure errors (database or broker unreachable) retried without bound: the
  partition waits, nothing is dead-lettered for an outage;
- graceful SIGTERM/SIGINT: finish the batch, commit, leave the group;
- structured logs with throughput and lag.
"""

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import CommitFailedError, KafkaError

from .config import client_options, topic_name
from .dlq import dead_letter
from .envelope import PoisonRecord
from .offsets import load_offsets, store_offsets
from .producer import wait_all

logger = logging.getLogger("eventplatform.consumer")

# Errors that say "the world is down", not "this record is bad": retried until they pass.
INFRASTRUCTURE_ERRORS = (
    OperationalError,
    InterfaceError,
    KafkaError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
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

    @property
    def group_id(self) -> str:
        return topic_name(f"group.{self.name}")

    def decode(self, record: ConsumerRecord) -> Any:
        """Turn a record into the handler's value; raise :class:`PoisonRecord` if impossible."""
        return record.value

    def handle_batch(self, messages: list[Message]) -> None:
        """Apply one batch. Must be idempotent: a batch may be redelivered after a crash."""
        raise NotImplementedError

    def on_assigned(self, partitions: list[TopicPartition]) -> None:
        """Hook called after partitions are assigned (and stored offsets sought)."""


@dataclass
class RuntimeStats:
    """Figures a run reports in its logs and to callers (benchmarks, tests)."""

    records: int = 0
    batches: int = 0
    dead_lettered: int = 0
    retries: int = 0
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
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.poll_timeout_ms = poll_timeout_ms
        self.report_every_seconds = report_every_seconds
        self.stats = RuntimeStats()
        self._stop = threading.Event()
        self._kafka: KafkaConsumer | None = None
        self.assigned = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------

    def request_stop(self, *_signal_args) -> None:
        """Ask the loop to finish the current batch, commit and leave the group."""
        self._stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def run(self, *, until: Callable[["ConsumerRuntime"], bool] | None = None) -> RuntimeStats:
        """Poll and process until :meth:`request_stop` (or ``until(self)`` is true)."""
        self._kafka = KafkaConsumer(
            **client_options(),
            group_id=self.consumer.group_id,
            client_id=f"{self.consumer.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.consumer.max_batch_size,
            # Bounds how long a fetch waits on an idle partition; brokers that answer a
            # waiting fetch only at its deadline would otherwise add up to 500 ms per hop.
            fetch_max_wait_ms=settings.KAFKA_FETCH_MAX_WAIT_MS,
            session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=settings.KAFKA_HEARTBEAT_INTERVAL_MS,
        )
        topics = [topic_name(t) for t in self.consumer.topics]
        self._kafka.subscribe(topics, listener=_SeekToStoredOffsets(self))
        logger.info(
            "consumer started",
            extra={
                "consumer": self.consumer.name,
                "group": self.consumer.group_id,
                "topics": ",".join(topics),
            },
        )
        last_report = time.monotonic()
        try:
            while not self._stop.is_set() and not (until and until(self)):
                batches = self._kafka.poll(
                    timeout_ms=self.poll_timeout_ms, max_records=self.consumer.max_batch_size
                )
                records = [r for tp in sorted(batches) for r in batches[tp]]
                if records:
                    if not self._process_batch(records):
                        break  # stopped during an outage: nothing committed, all redelivered
                    self._commit(records)
                if time.monotonic() - last_report >= self.report_every_seconds:
                    self._report()
                    last_report = time.monotonic()
        finally:
            self._report()
            # close() leaves the group so the partitions move to a peer at once.
            self._kafka.close(autocommit=False)
            self._kafka = None
            connections.close_all()  # this thread's connections; the runtime may run in one
            logger.info("consumer stopped", extra={"consumer": self.consumer.name})
        return self.stats

    # -- assignment --------------------------------------------------------------------

    def _on_assigned(self, partitions: list[TopicPartition]) -> None:
        if self.consumer.store_offsets_in_database and partitions:
            close_old_connections()
            stored = load_offsets(
                database=self.consumer.database,
                group=self.consumer.group_id,
                partitions=partitions,
            )
            for tp, offset in stored.items():
                self._kafka.seek(tp, offset)
        logger.info(
            "partitions assigned",
            extra={"consumer": self.consumer.name, "partitions": _names(partitions)},
        )
        self.consumer.on_assigned(partitions)
        self.assigned.set()

    # -- processing --------------------------------------------------------------------

    def _process_batch(self, records: list[ConsumerRecord]) -> bool:
        """Apply a batch; return False if a stop was requested before it could complete."""
        messages, poison = [], []
        for record in records:
            try:
                messages.append(Message(record, self.consumer.decode(record)))
            except PoisonRecord as error:
                poison.append((record, str(error)))
        if poison and not self._retry_forever(lambda: self._dead_letter_all(poison)):
            return False
        attempt = 0
        while True:
            try:
                self._apply(messages, offsets_of=records)
                self.stats.records += len(records)
                self.stats.batches += 1
                return True
            except INFRASTRUCTURE_ERRORS as error:
                if not self._wait_before_retry(attempt, error):
                    return False
            except Exception as error:
                if attempt >= self.max_retries:
                    logger.warning(
                        "batch failed, falling back to record by record",
                        extra={
                            "consumer": self.consumer.name,
                            "error": repr(error),
                            "size": len(messages),
                        },
                    )
                    return self._process_one_by_one(messages)
                if not self._wait_before_retry(attempt, error):
                    return False
            attempt += 1

    def _process_one_by_one(self, messages: list[Message]) -> bool:
        for message in messages:
            attempt = 0
            while True:
                try:
                    self._apply([message], offsets_of=[message.record])
                    break
                except INFRASTRUCTURE_ERRORS as error:
                    if not self._wait_before_retry(attempt, error):
                        return False
                except Exception as error:
                    if attempt >= self.max_retries:
                        failure = [(message.record, f"{type(error).__name__}: {error}")]
                        if not self._retry_forever(lambda f=failure: self._dead_letter_all(f)):
                            return False
                        break
                    if not self._wait_before_retry(attempt, error):
                        return False
                attempt += 1
            self.stats.records += 1
        self.stats.batches += 1
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
                store_offsets(database=database, group=self.consumer.group_id, records=offsets_of)

    def _dead_letter_all(self, failures: list[tuple[ConsumerRecord, str]]) -> None:
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
        if self.consumer.store_offsets_in_database:
            # Remember we are past the poison records, so a restart does not DLQ them again.
            self._apply([], offsets_of=[r for r, _ in failures])

    def _retry_forever(self, action: Callable[[], None]) -> bool:
        attempt = 0
        while True:
            try:
                action()
                return True
            except (*INFRASTRUCTURE_ERRORS, DatabaseError) as error:
                if not self._wait_before_retry(attempt, error):
                    return False
            attempt += 1

    def _wait_before_retry(self, attempt: int, error: BaseException) -> bool:
        """Back off exponentially; return False if a stop was requested meanwhile."""
        self.stats.retries += 1
        delay = min(self.backoff_seconds * (2**attempt), self.max_backoff_seconds)
        logger.warning(
            "retrying after error",
            extra={
                "consumer": self.consumer.name,
                "attempt": attempt + 1,
                "delay_s": round(delay, 3),
                "error": repr(error)[:500],
            },
        )
        return not self._stop.wait(delay)

    # -- commits and figures -----------------------------------------------------------

    def _commit(self, records: list[ConsumerRecord]) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = OffsetAndMetadata(record.offset + 1, "", -1)
        try:
            self._kafka.commit(offsets)
        except CommitFailedError as error:
            # The group rebalanced while we worked: the new owner redelivers the batch, and
            # handlers are idempotent, so this costs time, not correctness.
            logger.warning(
                "commit failed after rebalance",
                extra={"consumer": self.consumer.name, "error": str(error)},
            )

    def lag(self) -> int | None:
        """Records between this consumer's positions and the ends of its partitions."""
        if self._kafka is None:
            return None
        assignment = self._kafka.assignment()
        if not assignment:
            return None
        try:
            ends = self._kafka.end_offsets(list(assignment))
            return sum(max(0, ends[tp] - self._kafka.position(tp)) for tp in assignment)
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
                "records_per_s": round(self.stats.rate, 1),
                "lag": self.stats.lag,
            },
        )
