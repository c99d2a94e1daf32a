"""Where a consumer group will read next, as the broker has it committed."""

from kafka import TopicPartition

from .shared_admin import shared_admin


def committed_positions(group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The next offset ``group_id`` will read in each of ``partitions`` of ``topic`` (-1
    where it committed none yet). Raises ``KafkaError``, or ``ConnectionError`` when no
    broker listens, if the broker cannot say."""
    wanted = [TopicPartition(topic, partition) for partition in partitions]
    with shared_admin() as admin:
        committed = admin.list_group_offsets({group_id: wanted})[group_id]
    return {tp.partition: committed[tp].offset if tp in committed else -1 for tp in wanted}
