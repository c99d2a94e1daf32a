"""Producing test records to a logical topic."""

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all


def produce(logical_topic: str, values: list[str], *, key: str | None = None) -> None:
    futures = [send(topic_name(logical_topic), key=key, value=v.encode()) for v in values]
    wait_all(futures)
