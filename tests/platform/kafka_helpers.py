"""Reading topics back in tests, by manual assignment (no group needed)."""

from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.config import client_options, topic_name
from eventplatform.kafka.producer import send, wait_all


def produce(logical_topic: str, values: list[str], *, key: str | None = None) -> None:
    futures = [send(topic_name(logical_topic), key=key, value=v.encode()) for v in values]
    wait_all(futures)


def read_all(physical_topic: str, *, expected: int, timeout_s: float = 20) -> list:
    """Every record of a topic from the beginning, once ``expected`` have arrived."""
    consumer = KafkaConsumer(**client_options(), enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(physical_topic) or {0}
        consumer.assign([TopicPartition(physical_topic, p) for p in partitions])
        consumer.seek_to_beginning()
        records = []
        polls = int(timeout_s / 0.2)
        for _ in range(polls):
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if len(records) >= expected:
                break
        return records
    finally:
        consumer.close()
