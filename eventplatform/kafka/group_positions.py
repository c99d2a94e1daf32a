"""Where a consumer group will read next, as the broker has it committed."""

from kafka import KafkaAdminClient, TopicPartition

from .config import client_options


def committed_positions(group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The next offset ``group_id`` will read in each of ``partitions`` of ``topic`` (-1
    where it committed none yet). Raises ``KafkaError`` when the broker cannot say."""
    admin = KafkaAdminClient(
        **client_options(), request_timeout_ms=5_000, client_id="eventplatform-positions"
    )
    try:
        wanted = [TopicPartition(topic, partition) for partition in partitions]
        committed = admin.list_group_offsets({group_id: wanted})[group_id]
    finally:
        admin.close()
    return {
        partition: committed[TopicPartition(topic, partition)].offset
        if TopicPartition(topic, partition) in committed
        else -1
        for partition in partitions
    }
