"""Dead-letter records: sending them to ``<topic>.dlq``, and looking at, replaying and
discarding them afterwards.

A DLQ record keeps the original key, value and headers, with ``dlq.*`` headers saying why
and whence. Replaying one produces the original key, value and headers to its source topic
again; discarding one only marks it. Either way a :class:`~eventplatform.models.
DeadLetterAction` row records who did what and when, and that row is the record's mark:
a record with a row is handled and never replayed twice.

Replay is at least once: the mark is inserted, the record produced and acknowledged, and
only then does the transaction commit. A crash in between leaves the record unmarked, to
be replayed again (consumers are idempotent); a second replay of the same record at the
same moment waits on the first one's mark and is then refused, never produced.
"""

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from django.conf import settings
from django.db import IntegrityError, transaction
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from eventplatform.models import DeadLetterAction

from .catch_up import read_to_end
from .config import consumer_options, dlq_name, logical_name, topic_name
from .producer import send, wait_all
from .topics import declared_topics

HEADER_PREFIX = "dlq."
#: Marks a replayed record with the DLQ record it came from, for whoever traces it later.
REPLAYED_FROM = "dlq.replayed_from"
#: Records replayed or discarded per transaction: a failure redoes at most this many.
CHUNK = 500


class DeadLetterError(Exception):
    """A DLQ or record that does not exist, or cannot be replayed (the message says why)."""


def dead_letter(record: ConsumerRecord, *, error: str, consumer: str):
    """Send ``record`` to ``<topic>.dlq``; returns the future, which the caller must await.

    The original headers are kept, and ``dlq.*`` headers name the error and the source
    topic, partition and offset so the record can be inspected and replayed. A value too
    large to fit in a record of its own (often the very reason it failed) travels cut to
    ``KAFKA_DLQ_MAX_VALUE_BYTES`` with ``dlq.value_truncated`` giving its full size; the
    whole value stays at the source offset for as long as that topic retains it.
    """
    headers = list(record.headers or [])
    value = record.value
    limit = settings.KAFKA_DLQ_MAX_VALUE_BYTES
    if value is not None and len(value) > limit:
        headers.append(("dlq.value_truncated", str(len(value)).encode()))
        value = value[:limit]
    headers += [
        ("dlq.error", error[:2000].encode()),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    return send(dlq_name(record.topic), key=record.key, value=value, headers=headers)


@dataclass(frozen=True)
class DeadLetter:
    """One record of a DLQ topic."""

    dlq_topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_record(cls, record: ConsumerRecord) -> "DeadLetter":
        return cls(
            dlq_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers or ()),
        )

    @property
    def ref(self) -> str:
        """``partition:offset``, how the CLI and the console name a record of a DLQ."""
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace") if value is not None else ""
        return ""

    @property
    def error_headers(self) -> dict[str, str]:
        """The ``dlq.*`` headers: the error, the source, the consumer, when it failed."""
        return {
            key: (value or b"").decode("utf-8", "replace")
            for key, value in self.headers
            if key.startswith(HEADER_PREFIX)
        }

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it failed."""
        return [(k, v) for k, v in self.headers if not k.startswith(HEADER_PREFIX)]

    @property
    def source_topic(self) -> str:
        return self.header("dlq.source.topic")

    @property
    def source(self) -> str:
        """``topic[partition]@offset`` where the record failed."""
        return (
            f"{self.header('dlq.source.topic')}[{self.header('dlq.source.partition')}]"
            f"@{self.header('dlq.source.offset')}"
        )

    @property
    def key_text(self) -> str:
        return self.key.decode("utf-8", "replace") if self.key is not None else ""

    def as_dict(self, *, value_chars: int = 2000) -> dict:
        """A JSON-ready view (value decoded as text and cut to ``value_chars``)."""
        value = self.value.decode("utf-8", "replace") if self.value is not None else None
        return {
            "ref": self.ref,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat(),
            "key": self.key_text if self.key is not None else None,
            "value": value[:value_chars] if value is not None else None,
            "value_bytes": len(self.value) if self.value is not None else 0,
            "error": self.header("dlq.error"),
            "source": self.source,
            "consumer": self.header("dlq.consumer"),
            "headers": self.error_headers,
            "original_headers": {
                k: (v or b"").decode("utf-8", "replace") for k, v in self.original_headers
            },
        }


def dead_letter_topics() -> list[str]:
    """The physical DLQ topics of every declared topic that has one."""
    return [dlq_name(spec.physical_name) for spec in declared_topics() if spec.dead_letter]


def resolve_dlq(name: str) -> str:
    """The physical DLQ topic for ``name``: a DLQ or its source, logical or physical."""
    known = dead_letter_topics()
    for candidate in (name, topic_name(name), dlq_name(name), dlq_name(topic_name(name))):
        if candidate in known:
            return candidate
    names = ", ".join(logical_name(topic) for topic in known)
    raise DeadLetterError(f"no DLQ named {name!r}; the DLQs are: {names}")


def _reader() -> KafkaConsumer:
    return KafkaConsumer(**consumer_options(), group_id=None, enable_auto_commit=False)


def _close(consumer: KafkaConsumer) -> None:
    """Close a reader quietly: closing cancels any metadata refresh in flight, which
    kafka-python logs as an error although nothing failed (and a command's user error
    must stay one line)."""
    cluster_log = logging.getLogger("kafka.cluster")
    level = cluster_log.level
    cluster_log.setLevel(logging.CRITICAL)
    try:
        consumer.close()
    finally:
        cluster_log.setLevel(level)


def read_all(dlq_topic: str, *, timeout_s: float = 20) -> list[DeadLetter]:
    """Every record the DLQ holds, handled or not, in partition and offset order."""
    consumer = _reader()
    try:
        partitions = [
            TopicPartition(dlq_topic, p) for p in consumer.partitions_for_topic(dlq_topic) or ()
        ]
        if not partitions:
            raise DeadLetterError(f"{dlq_topic} does not exist: run manage.py create_topics")
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        letters: list[DeadLetter] = []
        read_to_end(
            consumer,
            partitions,
            timeout_s=timeout_s,
            on_records=lambda _tp, records: letters.extend(map(DeadLetter.from_record, records)),
        )
        return sorted(letters, key=lambda letter: (letter.partition, letter.offset))
    finally:
        _close(consumer)


def handled(dlq_topic: str) -> dict[tuple[int, int], DeadLetterAction]:
    """The DLQ's records already replayed or discarded, by ``(partition, offset)``."""
    return {
        (row.partition, row.offset): row
        for row in DeadLetterAction.objects.filter(dlq_topic=dlq_topic)
    }


def pending(dlq_topic: str) -> list[DeadLetter]:
    """The DLQ's records nobody replayed or discarded yet."""
    done = handled(dlq_topic)
    return [r for r in read_all(dlq_topic) if (r.partition, r.offset) not in done]


def parse_ref(ref: str) -> tuple[int, int]:
    """``partition:offset`` → ``(partition, offset)``; a clear error for anything else."""
    partition, sep, offset = ref.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(partition), int(offset)
    except ValueError:
        raise DeadLetterError(f"{ref!r} is not a record reference (partition:offset)") from None


def find(dlq_topic: str, refs: Iterable[str]) -> list[DeadLetter]:
    """The DLQ records named by ``refs``; an error naming any that is missing or handled."""
    wanted = [parse_ref(ref) for ref in refs]
    records = {(r.partition, r.offset): r for r in read_all(dlq_topic)}
    done = handled(dlq_topic)
    found = []
    for partition, offset in wanted:
        if (partition, offset) in done:
            row = done[(partition, offset)]
            raise DeadLetterError(
                f"{partition}:{offset} of {dlq_topic} was already {row.get_action_display()} "
                f"by {row.actor} at {row.acted_at:%Y-%m-%d %H:%M:%S}"
            )
        if (partition, offset) not in records:
            raise DeadLetterError(f"{dlq_topic} holds no record {partition}:{offset}")
        found.append(records[(partition, offset)])
    return found


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _mark(letters: list[DeadLetter], *, action: str, actor: str) -> list[DeadLetterAction]:
    """Insert the marks; refused as a whole if another hand marked one of them meanwhile."""
    rows = [
        DeadLetterAction(
            dlq_topic=letter.dlq_topic,
            partition=letter.partition,
            offset=letter.offset,
            action=action,
            actor=actor,
            key=letter.key_text,
            source=letter.source,
            error=letter.header("dlq.error"),
        )
        for letter in letters
    ]
    try:
        with transaction.atomic():
            return DeadLetterAction.objects.bulk_create(rows)
    except IntegrityError:
        raise DeadLetterError(
            "some of these records were replayed or discarded meanwhile; list them again"
        ) from None


def _original_value(letter: DeadLetter) -> bytes | None:
    """The full value: a truncated DLQ copy is completed from the source offset."""
    if not letter.header("dlq.value_truncated"):
        return letter.value
    source = TopicPartition(letter.source_topic, int(letter.header("dlq.source.partition")))
    offset = int(letter.header("dlq.source.offset"))
    consumer = _reader()
    try:
        consumer.assign([source])
        consumer.seek(source, offset)
        for _ in range(25):
            for record in consumer.poll(timeout_ms=200).get(source, []):
                if record.offset == offset:
                    return record.value
                if record.offset > offset:
                    break
    finally:
        _close(consumer)
    raise DeadLetterError(
        f"{letter.ref} was truncated in the DLQ and {letter.source} no longer holds the "
        "whole value: it cannot be replayed, only discarded"
    )


def _require_topics(topics: set[str]) -> None:
    """Refuse a replay to a topic that is gone: some brokers would create it on the fly."""
    consumer = _reader()
    try:
        missing = sorted(topics - consumer.topics())
    finally:
        _close(consumer)
    if missing:
        raise DeadLetterError(
            f"cannot replay to {', '.join(missing)}: the topic does not exist "
            "(manage.py create_topics creates the declared ones)"
        )


def replay(letters: Iterable[DeadLetter], *, actor: str) -> int:
    """Produce each record's original key, value and headers to its source topic again.

    Returns how many were replayed. See the module docstring for why this is at least
    once and never twice by two hands at the same moment.
    """
    count = 0
    for chunk in _chunks(letters, CHUNK):
        for letter in chunk:
            if not letter.source_topic:
                raise DeadLetterError(f"{letter.ref} has no dlq.source.topic header to replay to")
        _require_topics({letter.source_topic for letter in chunk})
        values = [_original_value(letter) for letter in chunk]
        with transaction.atomic():
            rows = _mark(chunk, action=DeadLetterAction.REPLAY, actor=actor)
            futures = [
                send(
                    letter.source_topic,
                    key=letter.key,
                    value=value,
                    headers=[
                        *letter.original_headers,
                        (REPLAYED_FROM, f"{letter.dlq_topic}[{letter.ref}]".encode()),
                    ],
                )
                for letter, value in zip(chunk, values, strict=True)
            ]
            for row, sent in zip(rows, wait_all(futures), strict=True):
                row.replayed_to = f"{sent.topic}[{sent.partition}]@{sent.offset}"
            DeadLetterAction.objects.bulk_update(rows, ["replayed_to"])
        count += len(chunk)
    return count


def discard(letters: Iterable[DeadLetter], *, actor: str) -> int:
    """Mark records as dealt with, without replaying them; returns how many."""
    count = 0
    for chunk in _chunks(letters, CHUNK):
        _mark(chunk, action=DeadLetterAction.DISCARD, actor=actor)
        count += len(chunk)
    return count
