"""Small helpers shared by tests."""

import time

from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.config import client_options


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until truthy; fail the test with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


def read_topic(topic: str, *, expected: int | None = None, timeout_s: float = 20) -> list:
    """Every record of a physical topic from the beginning, by manual assignment.

    With ``expected``, reads until that many arrived (or the timeout). Without, reads until
    caught up by the BROKER.md rule: a poll returned nothing and every position has reached
    its partition's end offset.
    """
    consumer = KafkaConsumer(**client_options(), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            for batch in batches.values():
                records.extend(batch)
            if expected is not None:
                if len(records) >= expected:
                    break
            elif not batches:
                ends = consumer.end_offsets(partitions)
                if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                    break
        return records
    finally:
        consumer.close()
