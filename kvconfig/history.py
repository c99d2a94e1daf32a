"""Per-key history, read from the namespace's topic (what compaction has not yet removed)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.catch_up import read_to_end
from eventplatform.kafka.config import consumer_options, topic_name

from .namespaces import get_namespace
from .schema import KVValidationError
from .store import HEADER_EDITED_AT, HEADER_EDITOR, KVError


@dataclass(frozen=True)
class Revision:
    """One record written under a key: its value (None = deleted), who and when."""

    partition: int
    offset: int
    value: Any
    editor: str
    edited_at: str
    problem: str  # why the store skipped this record, if it did

    @property
    def deleted(self) -> bool:
        return self.value is None and not self.problem


def key_history(*, namespace: str, key: str, limit: int = 50, timeout: float = 10) -> list:
    """The last ``limit`` revisions of ``key``, newest first.

    Reads the whole topic with a short-lived consumer (KV topics are small and compacted)
    until caught up by the platform's one rule (:mod:`eventplatform.kafka.catch_up`).
    """
    spec = get_namespace(namespace)
    topic = topic_name(spec.topic)
    wanted = key.encode()
    consumer = KafkaConsumer(**consumer_options(), group_id=None, enable_auto_commit=False)
    revisions = []

    def collect(_tp, records):
        revisions.extend(_revision(spec, r) for r in records if r.key == wanted)

    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise KVError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        if not read_to_end(consumer, tps, timeout_s=timeout, on_records=collect):
            raise KVError(f"reading the history of {key!r} took longer than {timeout:g} s")
    finally:
        consumer.close()
    # A key lives in one partition, so offsets order its revisions.
    revisions.sort(key=lambda r: (r.offset, r.partition), reverse=True)
    return revisions[:limit]


def _revision(spec, record) -> Revision:
    headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or []}
    edited_at = headers.get(HEADER_EDITED_AT) or datetime.fromtimestamp(
        record.timestamp / 1000, UTC
    ).isoformat(timespec="milliseconds")
    value, problem = None, ""
    if record.value is not None:
        try:
            value = spec.decode_value(record.value)
        except KVValidationError as error:
            value, problem = record.value.decode("utf-8", "replace"), str(error)
    return Revision(
        partition=record.partition,
        offset=record.offset,
        value=value,
        editor=headers.get(HEADER_EDITOR, "unknown"),
        edited_at=edited_at,
        problem=problem,
    )
