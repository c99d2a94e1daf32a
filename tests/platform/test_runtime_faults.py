"""The consumer runtime against what goes wrong on a real cluster: outages longer than the
poll interval, records too large to copy, topics that are missing or wrongly shaped."""

import logging
import time

import pytest
from django.db import OperationalError
from kafka import KafkaAdminClient, KafkaProducer

from contacts.importer import ContactImporter
from eventplatform.kafka import consumer as consumer_module
from eventplatform.kafka.config import client_options, dlq_name, topic_name
from eventplatform.kafka.topics import TopicShapeMismatch, ensure_topics
from eventplatform.notifications.relay import NotificationRelay
from sites.projection.consumer import InstalledAppsProjector
from tests.helpers import RunningConsumer, read_topic, wait_until
from tests.runtime_app.consumers import RecordingConsumer
from tests.runtime_app.models import AppliedRecord

ALL_DATABASES = ["default", "projections", "projections_replica"]


def _produce_raw(topic: str, values: list[bytes], key: bytes) -> None:
    """A producer that may send records up to the broker's limit (ours stops below it)."""
    producer = KafkaProducer(**client_options(), max_request_size=2 * 1024 * 1024)
    try:
        for value in values:
            producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
@pytest.mark.parametrize(
    "consumer_class",
    [InstalledAppsProjector, ContactImporter, NotificationRelay, RecordingConsumer],
    ids=lambda cls: cls.name,
)
def test_a_megabyte_poison_record_is_dead_lettered_once_and_its_partition_moves_on(
    kafka, consumer_class
):
    consumer = consumer_class()
    topic = topic_name(consumer.topics[0])
    huge = b"poison" + b"\xff" * 1_000_000  # neither JSON nor UTF-8 anywhere
    _produce_raw(topic, [huge, b"poison, small"], key=b"one-partition")
    running = RunningConsumer(consumer, backoff_seconds=0.05)
    with running as runtime:
        wait_until(
            lambda: runtime.stats.dead_lettered == 2,
            timeout=90,
            message=f"the partition stalled: {running.error!r}",
        )
    big, small = read_topic(dlq_name(topic), expected=2)
    headers = dict(big.headers)
    assert headers["dlq.value_truncated"] == str(len(huge)).encode()
    assert big.value == huge[: len(big.value)] and len(big.value) == 256 * 1024
    assert headers["dlq.source.offset"] == b"0"
    assert small.value == b"poison, small"
    assert len(read_topic(dlq_name(topic))) == 2  # once each, never again


@pytest.mark.django_db(transaction=True)
def test_an_outage_longer_than_the_poll_interval_keeps_the_group_and_applies_once(
    kafka, settings, caplog
):
    settings.KAFKA_MAX_POLL_INTERVAL_MS = 2000
    _produce_raw(topic_name("test.records"), [f"v{i}".encode() for i in range(30)], key=b"k")
    consumer = RecordingConsumer(store_offsets=True)
    outage = {}  # starts with the first batch, lasts four poll intervals
    apply = consumer.handle_batch

    def apply_unless_database_down(messages):
        started = outage.setdefault("started", time.time())
        if time.time() < started + 8:
            raise OperationalError("connection refused (the database is down)")
        apply(messages)

    consumer.handle_batch = apply_unless_database_down
    caplog.set_level(logging.INFO, logger="eventplatform.consumer")
    with RunningConsumer(consumer, backoff_seconds=0.05) as runtime:
        wait_until(lambda: AppliedRecord.objects.count() == 30, timeout=60)
        time.sleep(1)  # anything applied twice would show by now
        stopping = time.time()
    assert runtime.stats.retries >= 4
    offsets = list(AppliedRecord.objects.values_list("partition", "offset"))
    assert len(offsets) == len(set(offsets)) == 30
    # A member evicted for missing its poll interval would lose its partitions after that
    # interval; a rebalance in the first second is the group settling on a new topic.
    lost = [
        r.partitions
        for r in caplog.records
        if r.getMessage() == "partitions revoked"
        and r.partitions
        and outage["started"] + 1 < r.created < stopping
    ]
    assert lost == [], "the member lost its partitions during the outage"


@pytest.mark.django_db(transaction=True)
def test_a_database_down_when_partitions_are_assigned_is_waited_out_not_an_exit(kafka, monkeypatch):
    _produce_raw(topic_name("test.records"), [f"v{i}".encode() for i in range(10)], key=b"k")
    load_offsets = consumer_module.load_offsets
    refusals_left = [3]  # the database is down for the first three attempts

    def load_offsets_unless_database_down(**options):
        if refusals_left[0]:
            refusals_left[0] -= 1
            raise OperationalError('database "projections" does not exist')
        return load_offsets(**options)

    monkeypatch.setattr(consumer_module, "load_offsets", load_offsets_unless_database_down)
    running = RunningConsumer(RecordingConsumer(store_offsets=True), backoff_seconds=0.05)
    with running as runtime:
        wait_until(
            lambda: AppliedRecord.objects.count() == 10,
            timeout=60,
            message=f"the consumer did not wait the outage out: {running.error!r}",
        )
    assert running.error is None
    assert refusals_left == [0] and runtime.stats.retries >= 3
    assert sorted(AppliedRecord.objects.values_list("offset", flat=True)) == list(range(10))


@pytest.mark.django_db(transaction=True)
def test_a_consumer_started_before_create_topics_creates_nothing_and_refuses_a_wrong_shape(
    kafka_without_topics, caplog
):
    caplog.set_level(logging.WARNING, logger="eventplatform.consumer")
    topic = topic_name("test.records")
    admin = KafkaAdminClient(**client_options())
    try:
        running = RunningConsumer(RecordingConsumer())
        with running:
            wait_until(lambda: "waiting for topics" in caplog.text, timeout=20)
            time.sleep(1)
            assert topic not in admin.list_topics()  # waited, created nothing
            # Someone creates it by hand with the wrong shape (1 partition, declared 2).
            admin.create_topics({topic: {"num_partitions": 1, "replication_factor": -1}})
            running.thread.join(timeout=30)
        assert isinstance(running.error, TopicShapeMismatch)
        assert f"{topic} has 1 partitions, declared 2" in str(running.error)
        # It creates every other declared topic first: the fixture deletes them all.
        with pytest.raises(TopicShapeMismatch, match="has 1 partitions, declared 2"):
            ensure_topics()
    finally:
        admin.close()


@pytest.mark.django_db(transaction=True)
def test_a_consumer_with_stored_offsets_outlasts_a_broker_outage_and_stops_when_told(
    kafka_broker, settings, tmp_path
):
    from eventplatform.embedded.broker import EmbeddedBroker
    from eventplatform.kafka.producer import reset_producer

    # A broker of the test's own, so stopping it leaves the session's alone.
    broker = EmbeddedBroker(log_path=tmp_path / "own-broker.log").start()
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrap_servers
    reset_producer()
    try:
        ensure_topics()
        producer = KafkaProducer(**client_options())
        for value in [f"v{i}" for i in range(5)]:
            producer.send(topic_name("test.records"), value=value.encode()).get(timeout=30)
        producer.close()
        running = RunningConsumer(RecordingConsumer(store_offsets=True), report_every_seconds=1)
        with running:  # leaving it asks the runtime to stop, and waits 30 s for it
            wait_until(lambda: AppliedRecord.objects.count() == 5, message="nothing applied")
            broker.stop()
            # Long enough for two checks of the topics' identity and several progress
            # reports, each of which asks the absent broker.
            time.sleep(consumer_module.IDENTITY_CHECK_SECONDS * 2 + 2)
            assert running.thread.is_alive(), f"the consumer ended: {running.error!r}"
        assert running.error is None
    finally:
        broker.stop()
        reset_producer()
