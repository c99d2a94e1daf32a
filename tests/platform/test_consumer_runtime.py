import signal
import threading
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.config import client_options, dlq_name, topic_name
from tests.helpers import RunningConsumer, read_topic, wait_until
from tests.runtime_app.consumers import RecordingConsumer
from tests.runtime_app.models import AppliedRecord

from .kafka_helpers import produce

TOPIC = "test.records"


def _committed(group: str) -> int:
    """Sum of the group's committed offsets over the topic's partitions (0 where none)."""
    reader = KafkaConsumer(**client_options(), group_id=group, enable_auto_commit=False)
    try:
        partitions = reader.partitions_for_topic(topic_name(TOPIC))
        return sum(reader.committed(TopicPartition(topic_name(TOPIC), p)) or 0 for p in partitions)
    finally:
        reader.close()


def _applied_values() -> list[str]:
    return list(AppliedRecord.objects.order_by("id").values_list("value", flat=True))


def _pause_after_each_batch(consumer) -> tuple[threading.Event, threading.Event]:
    """Make the handler signal ``started`` after applying a batch, then wait for ``release``."""
    started, release = threading.Event(), threading.Event()
    apply = consumer.handle_batch

    def apply_then_wait(messages):
        apply(messages)
        started.set()
        release.wait(10)

    consumer.handle_batch = apply_then_wait
    return started, release


@pytest.mark.django_db(transaction=True)
def test_offsets_are_committed_only_after_the_batch_is_applied(kafka):
    produce(TOPIC, [f"v{i}" for i in range(10)], key="one-partition")
    consumer = RecordingConsumer()
    started, release = _pause_after_each_batch(consumer)
    with RunningConsumer(consumer):
        assert started.wait(30), "no batch arrived"
        committed_while_applying = _committed(consumer.group_id)
        release.set()
        wait_until(
            lambda: _committed(consumer.group_id) == 10,
            message="offsets not committed after the batch",
        )
    assert committed_while_applying == 0  # nothing committed while the batch was being applied
    assert sorted(_applied_values()) == sorted(f"v{i}" for i in range(10))


@pytest.mark.django_db(transaction=True)
def test_a_poison_record_goes_to_the_dlq_with_headers_and_its_neighbours_are_applied(kafka):
    produce(TOPIC, ["before", "poison-pill", "after"], key="same-partition")
    consumer = RecordingConsumer()
    with RunningConsumer(consumer) as runtime:
        wait_until(lambda: len(_applied_values()) == 2, message="neighbours not applied")
        wait_until(lambda: runtime.stats.dead_lettered == 1)
    assert _applied_values() == ["before", "after"]
    [dead] = read_topic(dlq_name(topic_name(TOPIC)), expected=1)
    headers = dict(dead.headers)
    assert dead.value == b"poison-pill"
    assert dead.key == b"same-partition"
    assert b"cannot decode 'poison-pill'" in headers["dlq.error"]
    assert headers["dlq.source.topic"] == topic_name(TOPIC).encode()
    assert headers["dlq.source.offset"] == b"1"
    assert headers["dlq.source.partition"].isdigit()
    assert headers["dlq.consumer"] == b"test-recorder"


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_falls_back_to_record_by_record_and_only_the_bad_one_is_dead_lettered(
    kafka,
):
    produce(TOPIC, ["a", "b", "rejected", "c"], key="same-partition")
    consumer = RecordingConsumer()
    consumer.reject = "rejected"
    with RunningConsumer(consumer, max_retries=2) as runtime:
        wait_until(lambda: runtime.stats.dead_lettered == 1, message="bad record not in DLQ")
        wait_until(lambda: _committed(consumer.group_id) == 4)
    assert _applied_values() == ["a", "b", "c"]
    [dead] = read_topic(dlq_name(topic_name(TOPIC)), expected=1)
    assert dead.value == b"rejected"
    assert b"ValueError: handler rejects 'rejected'" in dict(dead.headers)["dlq.error"]
    assert runtime.stats.retries >= 2


def _wait_for_batch_start(process, count: int = 1) -> None:
    wait_until(
        lambda: Path(process.log_path).read_text().count("batch started") >= count,
        timeout=60,
        message=f"consumer never started a batch: {process.log_path}",
    )


@pytest.mark.django_db(transaction=True)
def test_a_consumer_killed_mid_batch_redelivers_that_batch_on_restart(kafka, spawn_manage):
    produce(TOPIC, [f"v{i}" for i in range(100)], key="same-partition")
    slow = spawn_manage(
        "run_test_consumer", "--batch-size", "25", env={"TEST_CONSUMER_SLEEP": "30"}
    )
    _wait_for_batch_start(slow)
    slow.send_signal(signal.SIGKILL)  # the first batch's transaction is still open
    slow.wait()
    assert AppliedRecord.objects.count() == 0
    spawn_manage("run_test_consumer", "--batch-size", "25")
    wait_until(lambda: AppliedRecord.objects.count() >= 100, timeout=60)
    assert sorted(_applied_values()) == sorted(f"v{i}" for i in range(100))


@pytest.mark.django_db(transaction=True)
def test_offsets_stored_with_the_effects_make_repeated_sigkills_exactly_once(kafka, spawn_manage):
    produce(TOPIC, [f"v{i}" for i in range(400)])
    for attempt in range(3):
        process = spawn_manage(
            "run_test_consumer",
            "--store-offsets",
            "--batch-size",
            "40",
            env={"TEST_CONSUMER_SLEEP": "0.3"},
        )
        _wait_for_batch_start(process, count=2 + attempt)
        process.send_signal(signal.SIGKILL)
        process.wait()
    spawn_manage("run_test_consumer", "--store-offsets", "--batch-size", "40")
    wait_until(lambda: AppliedRecord.objects.count() >= 400, timeout=90)
    offsets = list(AppliedRecord.objects.values_list("partition", "offset"))
    assert len(offsets) == len(set(offsets)) == 400  # each record applied exactly once


@pytest.mark.django_db(transaction=True)
def test_a_consumer_killed_after_dead_lettering_a_poison_record_loses_none_of_its_batch(
    kafka, spawn_manage
):
    good = [f"v{i}" for i in range(10)] + [f"w{i}" for i in range(5)]
    produce(TOPIC, good[:10] + ["poison-pill"] + good[10:], key="same-partition")
    slow = spawn_manage(
        "run_test_consumer",
        "--store-offsets",
        "--batch-size",
        "50",
        env={"TEST_CONSUMER_SLEEP": "30"},
    )
    _wait_for_batch_start(slow)
    # The poison pill went to the DLQ before the batch began: the whole log is this batch.
    assert "batch started size=15" in Path(slow.log_path).read_text()
    assert read_topic(dlq_name(topic_name(TOPIC)), expected=1)[0].value == b"poison-pill"
    slow.send_signal(signal.SIGKILL)  # the batch's transaction is still open
    slow.wait()
    assert AppliedRecord.objects.count() == 0

    spawn_manage("run_test_consumer", "--store-offsets", "--batch-size", "50")
    wait_until(
        lambda: AppliedRecord.objects.count() >= 15,
        timeout=60,
        message="the records before the poison pill were skipped after the restart",
    )
    assert sorted(_applied_values()) == sorted(good)
    dead = read_topic(dlq_name(topic_name(TOPIC)))
    assert {record.value for record in dead} == {b"poison-pill"}


@pytest.mark.django_db(transaction=True)
def test_sigterm_finishes_the_batch_commits_and_exits_cleanly(kafka, spawn_manage):
    produce(TOPIC, [f"v{i}" for i in range(60)], key="same-partition")
    process = spawn_manage(
        "run_test_consumer", "--batch-size", "20", env={"TEST_CONSUMER_SLEEP": "2"}
    )
    _wait_for_batch_start(process)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = Path(process.log_path).read_text()
    assert "consumer stopped" in log
    # The batch under way when SIGTERM arrived was finished and committed, and no more.
    assert AppliedRecord.objects.count() == 20
    assert _committed(RecordingConsumer().group_id) == 20


@pytest.mark.django_db(transaction=True)
def test_lag_counts_the_records_between_position_and_partition_end(kafka):
    for i in range(30):  # one record per produce request: exact high watermarks everywhere
        produce(TOPIC, [f"v{i}"], key="same-partition")
    consumer = RecordingConsumer(max_batch_size=10)
    started, release = _pause_after_each_batch(consumer)
    with RunningConsumer(consumer) as runtime:
        assert started.wait(30)
        lag_during_first_batch = runtime.lag()
        release.set()
        wait_until(lambda: runtime.stats.records == 30)
    assert lag_during_first_batch == 20
    assert runtime.stats.batches >= 3
