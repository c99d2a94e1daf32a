import pytest
from kafka import KafkaAdminClient

from eventplatform.kafka.config import client_options, topic_name
from eventplatform.kafka.topics import declare, declared_topics, ensure_topics


def test_create_topics_twice_creates_once(kafka_without_topics, manage):
    first = manage("create_topics").stdout
    second = manage("create_topics").stdout
    assert f"created {topic_name('test.records')}\n" in first
    assert f"created {topic_name('test.records')}.dlq\n" in first
    assert "created" not in second.replace("0 created", "")
    assert second.strip().startswith("0 created")


def test_declared_topics_exist_with_their_partitions_after_ensure(kafka_without_topics):
    created, present = ensure_topics()
    assert not present
    admin = KafkaAdminClient(**client_options())
    try:
        described = {t["name"]: t for t in admin.describe_topics([topic_name("test.records")])}
    finally:
        admin.close()
    assert len(described[topic_name("test.records")]["partitions"]) == 2
    assert {spec.name for spec in declared_topics()} >= {"test.records"}


def test_a_conflicting_declaration_is_refused():
    declare("test.declared-once", partitions=3)
    with pytest.raises(ValueError, match="declared twice"):
        declare("test.declared-once", partitions=4)
