"""Consumer offsets kept in a database, in the same transaction as a batch's effects.

A consumer that stores its offsets beside its effects is exactly-once in effect: either the
batch's rows and its offsets commit together, or neither does, and on assignment the runtime
seeks to the stored offsets instead of the group's committed ones.
"""

from collections.abc import Iterable
from typing import NamedTuple

from kafka import TopicPartition

from eventplatform.models import ConsumerOffset


def store_offsets(
    *, database: str, group: str, records: Iterable, topic_ids: dict[str, str] | None = None
) -> None:
    """Record, for each partition in ``records``, the offset after its last record.

    ``topic_ids`` (topic name → id) is stored beside, so a recreated topic is recognised.
    """
    topic_ids = topic_ids or {}
    latest: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        latest[key] = max(latest.get(key, -1), record.offset + 1)
    ConsumerOffset.objects.using(database).bulk_create(
        [
            ConsumerOffset(
                group=group,
                topic=topic,
                partition=partition,
                next_offset=offset,
                topic_id=topic_ids.get(topic, ""),
            )
            for (topic, partition), offset in latest.items()
        ],
        update_conflicts=True,
        unique_fields=["group", "topic", "partition"],
        update_fields=["next_offset", "topic_id"],
    )


class StoredOffset(NamedTuple):
    next_offset: int
    topic_id: str  # "" when unknown


def load_offsets(
    *, database: str, group: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, StoredOffset]:
    """The stored next offset (and topic id) of each partition that has one."""
    partitions = list(partitions)
    topics = {tp.topic for tp in partitions}
    rows = ConsumerOffset.objects.using(database).filter(group=group, topic__in=topics)
    stored = {
        (row.topic, row.partition): StoredOffset(row.next_offset, row.topic_id) for row in rows
    }
    return {
        tp: stored[(tp.topic, tp.partition)]
        for tp in partitions
        if (tp.topic, tp.partition) in stored
    }


def reset_offsets(*, database: str, group: str) -> None:
    """Forget a group's stored offsets (a rebuild starts from the beginning)."""
    ConsumerOffset.objects.using(database).filter(group=group).delete()
