import pytest
from django.db import transaction
from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.config import client_options, topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.topics import declare
from eventplatform.outbox import OutboxRelay, publish

declare("test.smoke", partitions=3)


@pytest.mark.django_db(transaction=True)
def test_outbox_roundtrip(kafka):
    with transaction.atomic():
        for i in range(10):
            publish("test.smoke", f"k{i % 3}", Event(type="Smoke", data={"i": i}))
    relay = OutboxRelay()
    assert relay.relay_once() == 10
    consumer = KafkaConsumer(**client_options(), enable_auto_commit=False)
    tps = [TopicPartition(topic_name("test.smoke"), p) for p in range(3)]
    consumer.assign(tps)
    consumer.seek_to_beginning()
    seen = []
    for _ in range(20):
        for records in consumer.poll(timeout_ms=500).values():
            seen += [Event.decode(r.value).data["i"] for r in records]
        if len(seen) == 10:
            break
    assert sorted(seen) == list(range(10))
