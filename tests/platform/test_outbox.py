import re
import signal
import threading
from pathlib import Path

import pytest
from django.db import connection, transaction

from eventplatform.embedded.broker import EmbeddedBroker
from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.producer import reset_producer
from eventplatform.kafka.topics import TopicSpec, ensure_topics
from eventplatform.models import OutboxEvent
from eventplatform.outbox import (
    EventTooLarge,
    OutboxRelay,
    OutsideTransaction,
    publish,
    publish_many,
    resend,
)
from eventplatform.outbox_stream import RELAY_LOCK_KEY
from tests.helpers import read_topic, wait_until

TOPIC = "test.records"


def _publish_events(count: int, *, keys: int = 3, start: int = 0) -> None:
    with transaction.atomic():
        for i in range(start, start + count):
            publish(TOPIC, f"key-{i % keys}", Event(type="Counted", data={"n": i}))


def _publish_in_bulk(count: int, *, keys: int = 5) -> None:
    """``_publish_events``'s rows, through ``publish_many``: for outboxes of many thousands."""
    with transaction.atomic():
        publish_many(
            TOPIC, ((f"key-{n % keys}", Event(type="Counted", data={"n": n})) for n in range(count))
        )


def _received_numbers(count: int | None = None) -> list[tuple[str, int]]:
    """``(key, n)`` of the records in the topic: until ``count`` arrived, or (without it)
    every one to the end of the log."""
    records = read_topic(topic_name(TOPIC), expected=count)
    return [(r.key.decode(), Event.decode(r.value).data["n"]) for r in records]


def _assert_each_once_every_key_in_order(received: list[tuple[str, int]], total: int) -> None:
    assert sorted(n for _, n in received) == list(range(total))
    for key in {k for k, _ in received}:
        numbers = [n for k, n in received if k == key]
        assert numbers == sorted(numbers), f"{key} arrived out of order"


@pytest.mark.django_db(transaction=True)
def test_publish_refuses_to_run_outside_a_transaction():
    with pytest.raises(OutsideTransaction, match="inside transaction.atomic"):
        publish(TOPIC, "k", Event(type="Lost", data={}))
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_publishes_nothing(kafka):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish(TOPIC, "k", Event(type="Doomed", data={}))
        raise RuntimeError("the change failed")
    assert OutboxRelay().relay_once() == 0
    assert read_topic(topic_name(TOPIC), expected=1, timeout_s=1) == []


@pytest.mark.django_db(transaction=True)
def test_committed_events_arrive_in_order_per_key_and_are_marked_sent(kafka):
    _publish_events(300)
    relay = OutboxRelay(batch_size=120)
    while relay.relay_once():
        pass
    _assert_each_once_every_key_in_order(_received_numbers(300), 300)
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_events_published_many_at_once_arrive_in_order_with_their_values(kafka):
    counted = ((f"key-{n % 3}", Event(type="Counted", data={"n": n})) for n in range(250))
    with transaction.atomic():
        assert publish_many(TOPIC, counted) == 250
        publish_many(TOPIC, [(None, b"raw bytes"), ("gone", None)], headers={"origin": "test"})
    relay = OutboxRelay(batch_size=100)
    while relay.relay_once():
        pass
    records = read_topic(topic_name(TOPIC), expected=252)
    counted = [r for r in records if r.key and r.key.startswith(b"key-")]
    events = [(r.key.decode(), Event.decode(r.value).data["n"]) for r in counted]
    assert sorted(n for _, n in events) == list(range(250))
    for key in {k for k, _ in events}:
        numbers = [n for k, n in events if k == key]
        assert numbers == sorted(numbers), f"{key} out of order"
    others = sorted((r for r in records if r not in counted), key=lambda r: r.value is None)
    assert [(r.key, r.value, dict(r.headers)) for r in others] == [
        (None, b"raw bytes", {"origin": b"test"}),
        (b"gone", None, {"origin": b"test"}),
    ]
    assert relay.sent == 252 and not OutboxEvent.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_publish_many_stores_nothing_when_one_event_is_too_large_or_outside_a_transaction(
    settings,
):
    settings.OUTBOX_MAX_EVENT_BYTES = 1000
    with pytest.raises(EventTooLarge, match="limit is 1,000 bytes"), transaction.atomic():
        publish_many(TOPIC, [("a", b"small"), ("b", b"y" * 1001)])
    with pytest.raises(OutsideTransaction):
        publish_many(TOPIC, [("a", b"small")])
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_many(TOPIC, [("a", b"small")])
        raise RuntimeError("the change failed")
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_events_written_while_the_broker_is_down_arrive_after_it_restarts(
    kafka_broker, settings, spawn_manage, tmp_path
):
    session_broker = settings.KAFKA_BOOTSTRAP_SERVERS
    broker = EmbeddedBroker(log_path=tmp_path / "own-broker.log").start()
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrap_servers
    reset_producer()
    try:
        ensure_topics()
        relay = spawn_manage(
            "relay_outbox", env={"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
        )
        _publish_events(20)
        wait_until(
            lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(),
            message="relay did not send while the broker was up",
        )

        broker.stop()
        _publish_events(30, start=20)  # writes succeed with the broker down
        assert OutboxEvent.objects.filter(sent_at__isnull=True).count() == 30

        broker.start()  # same port; the in-memory broker lost its topics
        ensure_topics()
        reset_producer()
        wait_until(
            lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(),
            timeout=60,
            message="relay did not catch up after the broker came back",
        )
        numbers = {n for _, n in _received_numbers(30)}
        assert numbers == set(range(20, 50))
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=20) == 0
    finally:
        broker.stop()
        settings.KAFKA_BOOTSTRAP_SERVERS = session_broker
        reset_producer()


@pytest.mark.django_db(transaction=True)
def test_a_row_the_broker_refuses_is_set_aside_and_the_rows_after_it_arrive(kafka, settings):
    # Past the write-time bound on purpose, as an event written before the bound existed.
    settings.OUTBOX_MAX_EVENT_BYTES = 2 * 1024 * 1024
    with transaction.atomic():
        refused = publish(TOPIC, "key-0", b"x" * (1100 * 1024))
    _publish_events(100)
    relay = OutboxRelay(batch_size=40)
    while relay.relay_once():
        pass
    received = _received_numbers(100)
    assert sorted(n for _, n in received) == list(range(100))
    refused.refresh_from_db()
    assert refused.sent_at is None and refused.set_aside_at is not None
    assert "MessageSizeTooLarge" in refused.error
    assert (relay.sent, relay.set_aside) == (100, 1)


@pytest.mark.django_db(transaction=True)
def test_rows_for_a_missing_topic_wait_while_the_other_topics_rows_arrive(kafka, settings):
    missing = "test.created_later"  # declared by no app, so no fixture creates it
    settings.KAFKA_MAX_BLOCK_MS = 1000  # how long the producer looks for a topic
    reset_producer()
    with transaction.atomic():
        for n in range(3):
            publish(missing, "key-0", Event(type="Counted", data={"n": n}))
    _publish_events(50)
    relay = OutboxRelay(batch_size=20, missing_topic_recheck=0)
    while relay.relay_once():
        pass
    assert sorted(n for _, n in _received_numbers(50)) == list(range(50))
    waiting = OutboxEvent.objects.filter(topic=missing)
    assert [(row.sent_at, row.set_aside_at) for row in waiting] == [(None, None)] * 3
    assert relay.held_topics == {missing}

    ensure_topics([TopicSpec(name=missing, dead_letter=False)])
    while relay.relay_once():
        pass
    records = read_topic(topic_name(missing), expected=3)
    assert [Event.decode(record.value).data["n"] for record in records] == [0, 1, 2]
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    assert relay.held_topics == set()


@pytest.mark.django_db(
    transaction=True, databases=["default", "projections", "projections_replica"]
)
def test_a_set_aside_row_is_counted_listed_in_the_admin_and_resent_from_there(
    kafka, settings, admin_client
):
    settings.OUTBOX_MAX_EVENT_BYTES = 2 * 1024 * 1024
    with transaction.atomic():
        refused = publish(TOPIC, "key-0", b"x" * (1100 * 1024))
    OutboxRelay().relay_once()
    metrics = admin_client.get("/metrics").content.decode()
    assert "eventplatform_outbox_set_aside 1.0" in metrics
    listing = admin_client.get("/admin/eventplatform/outboxevent/?state=set_aside")
    assert "MessageSizeTooLarge" in listing.content.decode()
    # Fixed at the source (here: the row made small), then resent from the admin.
    OutboxEvent.objects.filter(id=refused.id).update(value=b"fixed")
    admin_client.post(
        "/admin/eventplatform/outboxevent/",
        {"action": "resend_rows", "_selected_action": [refused.id]},
    )
    OutboxRelay().relay_once()
    refused.refresh_from_db()
    assert refused.sent_at is not None and refused.set_aside_at is None
    assert [r.value for r in read_topic(topic_name(TOPIC))] == [b"fixed"]


def _relayed_after_a_refused_row(*later: tuple[str, bytes]) -> OutboxEvent:
    """A "key-0" row the broker refuses, then the ``later`` (key, value) rows, through the
    relay; the refused row is set aside and then fixed (its value made ``v1``)."""
    with transaction.atomic():
        refused = publish(TOPIC, "key-0", b"x" * (1100 * 1024))
        for key, value in later:
            publish(TOPIC, key, value)
    relay = OutboxRelay()
    while relay.relay_once():
        pass
    OutboxEvent.objects.filter(id=refused.id).update(value=b"v1")
    return refused


@pytest.mark.django_db(transaction=True)
def test_a_resent_row_is_followed_again_by_its_keys_later_rows(kafka, settings):
    settings.OUTBOX_MAX_EVENT_BYTES = 2 * 1024 * 1024
    refused = _relayed_after_a_refused_row(
        ("key-1", b"other key"), ("key-0", b"v2"), ("key-0", b"v3")
    )

    assert resend(row_ids=[refused.id]) == 1
    relay = OutboxRelay()
    while relay.relay_once():
        pass

    by_key = {}
    for record in read_topic(topic_name(TOPIC)):
        by_key.setdefault(record.key, []).append(record.value)
    # The fixed row arrives late, and the key's later events follow it again in order,
    # so its latest event is still its last record (what compaction keeps).
    assert by_key == {b"key-0": [b"v2", b"v3", b"v1", b"v2", b"v3"], b"key-1": [b"other key"]}
    assert not OutboxEvent.objects.filter(sent_at__isnull=True).exists()
    assert resend(row_ids=[refused.id]) == 0  # sent now: nothing to resend


@pytest.mark.django_db(transaction=True)
def test_a_resend_waits_for_a_write_of_the_same_key_in_progress(kafka, settings):
    settings.OUTBOX_MAX_EVENT_BYTES = 2 * 1024 * 1024
    refused = _relayed_after_a_refused_row(("key-0", b"v2"))
    resent = threading.Event()

    def resend_meanwhile() -> None:
        resend(row_ids=[refused.id])
        resent.set()

    with transaction.atomic():
        publish(TOPIC, "key-0", b"v3")  # the key's newest event, not committed yet
        resender = threading.Thread(target=resend_meanwhile)
        resender.start()
        assert not resent.wait(1)  # the resend waits for this write to end
    resender.join(10)
    assert resent.is_set()
    relay = OutboxRelay()
    while relay.relay_once():
        pass

    values = [r.value for r in read_topic(topic_name(TOPIC)) if r.key == b"key-0"]
    assert values[-1] == b"v3"  # what compaction keeps is still the newest event


def test_an_event_over_the_bound_is_refused_before_anything_is_stored(db, settings):
    settings.OUTBOX_MAX_EVENT_BYTES = 1000
    with pytest.raises(EventTooLarge, match="limit is 1,000 bytes"), transaction.atomic():
        publish(TOPIC, "k", b"y" * 1001)
    assert not OutboxEvent.objects.exists()


def _running_relays(spawn_manage, count: int, *, batch_size: int) -> list:
    """``count`` relay processes, each up to the point where it takes rows (and a SIGTERM
    stops it cleanly): on a fast machine the first ones can empty the outbox before the
    last has started."""
    # Each relay's connection is named after it (libpq's PGAPPNAME), see _streaming_relay.
    relays = [
        spawn_manage(
            "relay_outbox", "--batch-size", str(batch_size), env={"PGAPPNAME": f"relay-{n}"}
        )
        for n in range(count)
    ]
    for relay in relays:
        wait_until(
            lambda relay=relay: "relay started" in Path(relay.log_path).read_text(),
            timeout=60,
            message=f"a relay did not start, see {relay.log_path}",
        )
    return relays


@pytest.mark.django_db(transaction=True)
def test_three_relays_keep_every_keys_order(kafka, spawn_manage):
    relays = _running_relays(spawn_manage, 3, batch_size=25)
    for start in range(0, 1500, 100):
        _publish_events(100, keys=7, start=start)
    wait_until(
        lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(),
        timeout=90,
        message="relays did not drain the outbox",
    )
    for relay in relays:
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=20) == 0
    _assert_each_once_every_key_in_order(_received_numbers(1500), 1500)


@pytest.mark.django_db(transaction=True)
def test_two_relays_never_send_a_row_twice(kafka, spawn_manage):
    first, second = _running_relays(spawn_manage, 2, batch_size=50)
    for start in range(0, 2000, 200):
        _publish_events(200, start=start)
    wait_until(
        lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(),
        timeout=90,
        message="relays did not drain the outbox",
    )
    for relay in (first, second):
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=20) == 0
    received = [n for _, n in _received_numbers(2000)]
    assert len(received) == 2000 and set(received) == set(range(2000))
    sent_by_each = [_rows_sent(relay.log_path) for relay in (first, second)]
    assert sum(sent_by_each) == 2000, sent_by_each


@pytest.mark.django_db(transaction=True)
def test_a_relay_stopped_in_the_middle_of_a_long_outbox_marks_what_it_sent(kafka, spawn_manage):
    total = 30_000
    _publish_in_bulk(total)
    (relay,) = _running_relays(spawn_manage, 1, batch_size=100)
    wait_until(
        lambda: OutboxEvent.objects.filter(sent_at__isnull=False).exists(),
        interval=0.01,
        message="the relay sent nothing",
    )
    relay.send_signal(signal.SIGTERM)
    assert relay.wait(timeout=20) == 0
    sent_before_stop = _rows_sent(relay.log_path)
    # Stopped part-way, with every row it sent marked, and none marked that it did not send.
    assert 0 < sent_before_stop < total
    assert OutboxEvent.objects.filter(sent_at__isnull=False).count() == sent_before_stop
    assert len(read_topic(topic_name(TOPIC))) == sent_before_stop

    next_relay = OutboxRelay(batch_size=1000)
    while next_relay.relay_once():
        pass
    _assert_each_once_every_key_in_order(_received_numbers(), total)


@pytest.mark.django_db(transaction=True)
def test_a_standby_relay_takes_over_from_one_killed_mid_stream(kafka, spawn_manage):
    total, batch_size = 60_000, 50
    # Both up before any row: a relay's start-up can take as long as the whole stream.
    relays = _running_relays(spawn_manage, 2, batch_size=batch_size)
    _publish_in_bulk(total)
    wait_until(
        lambda: OutboxEvent.objects.filter(sent_at__isnull=False).exists(),
        message="no relay sent anything",
    )
    streaming = _streaming_relay(relays)
    (standby,) = [relay for relay in relays if relay is not streaming]
    assert OutboxEvent.objects.filter(sent_at__isnull=True).exists(), "killed too late"
    streaming.kill()
    streaming.wait(timeout=20)
    wait_until(
        lambda: not OutboxEvent.objects.filter(sent_at__isnull=True).exists(),
        timeout=90,
        message="the standby relay did not send the rest",
    )
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(timeout=20) == 0
    numbers = [n for _, n in _received_numbers()]
    assert set(numbers) == set(range(total))
    # Sent again: at most what the killed relay had not recorded, the batch it was
    # sending and the one acknowledged before it.
    assert len(numbers) - total <= 2 * batch_size


def _streaming_relay(relays: list):
    """The relay whose connection holds the relays' advisory lock (it is streaming)."""

    def holder() -> str | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid::bigint = %s AND l.objid::bigint = %s",
                [RELAY_LOCK_KEY >> 32, RELAY_LOCK_KEY & 0xFFFFFFFF],
            )
            row = cursor.fetchone()
        return row[0] if row else None

    # Between two streaks (each at most a second) the lock is free for a moment.
    name = wait_until(holder, timeout=10, interval=0.01, message="no relay holds the lock")
    return relays[int(name.removeprefix("relay-"))]


def _rows_sent(log_path: str) -> int:
    match = re.search(r"relay stopped after sending (\d+) rows", Path(log_path).read_text())
    assert match, f"relay did not stop cleanly, see {log_path}"
    return int(match.group(1))


@pytest.mark.django_db(transaction=True)
def test_a_running_relay_picks_up_a_new_row_by_itself(kafka):
    relay = OutboxRelay()
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: relay.sent == 0 and thread.is_alive())
        _publish_events(1)
        wait_until(lambda: relay.sent == 1, timeout=10)
        assert OutboxEvent.objects.get().sent_at is not None
    finally:
        relay.request_stop()
        thread.join(timeout=10)


@pytest.mark.django_db
def test_sent_rows_older_than_the_retention_are_pruned():
    from datetime import timedelta

    from django.utils import timezone

    with transaction.atomic():
        old, recent, unsent = (publish(TOPIC, "k", b"v") for _ in range(3))
    OutboxEvent.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(days=8))
    OutboxEvent.objects.filter(pk=recent.pk).update(sent_at=timezone.now())
    assert OutboxRelay(retention=timedelta(days=7)).prune() == 1
    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {recent.pk, unsent.pk}
