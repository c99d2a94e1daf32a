"""Replay's guarantees on a real broker and database: two hands replaying the same record at
once produce it once; a truncated record is replayed whole from its source; a replay to a
source topic that is gone is refused, leaving the record unmarked to be replayed later."""

import threading
from dataclasses import replace

import pytest

from eventplatform.kafka import dlq
from eventplatform.kafka.config import dlq_name, topic_name
from eventplatform.models import DeadLetterAction
from tests.helpers import RunningConsumer, read_topic, wait_until
from tests.runtime_app.consumers import RecordingConsumer

from .kafka_helpers import produce

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "test.records"


def _dead_lettered(value: str) -> dlq.DeadLetter:
    """Produce ``value``, have a consumer reject it, and return its DLQ record."""
    produce(TOPIC, [value], key="one-partition")
    consumer = RecordingConsumer()
    consumer.reject = value
    dlq_topic = dlq_name(topic_name(TOPIC))
    with RunningConsumer(consumer, max_retries=0):
        wait_until(lambda: dlq.pending(dlq_topic), interval=0.5, message="nothing dead-lettered")
    [letter] = dlq.pending(dlq_topic)
    return letter


def _copies(value: bytes) -> int:
    return sum(1 for record in read_topic(topic_name(TOPIC)) if record.value == value)


def test_two_replays_of_one_record_at_once_produce_it_once(kafka):
    letter = _dead_lettered("twice")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def replay():
        start.wait()
        try:
            outcomes.append(f"replayed {dlq.replay([letter], actor='one of two')}")
        except dlq.DeadLetterError as error:
            outcomes.append(str(error))

    hands = [threading.Thread(target=replay) for _ in range(2)]
    for hand in hands:
        hand.start()
    for hand in hands:
        hand.join(60)

    assert sorted(outcomes) == [
        "replayed 1",
        "some of these records were replayed or discarded meanwhile; list them again",
    ]
    assert _copies(b"twice") == 2  # the original and one replay
    assert DeadLetterAction.objects.count() == 1


def test_a_truncated_record_is_replayed_whole_from_its_source(kafka, settings):
    settings.KAFKA_DLQ_MAX_VALUE_BYTES = 8
    value = "a value longer than eight bytes"
    letter = _dead_lettered(value)
    assert letter.value == b"a value "
    assert letter.header("dlq.value_truncated") == str(len(value))

    assert dlq.replay([letter], actor="tester") == 1
    assert _copies(b"a value longer than eight bytes") == 2


def test_a_replay_to_a_topic_that_is_gone_is_refused_and_leaves_the_record_unmarked(kafka):
    letter = _dead_lettered("orphan")
    elsewhere = tuple(
        (key, topic_name("gone").encode() if key == "dlq.source.topic" else value)
        for key, value in letter.headers
    )
    with pytest.raises(dlq.DeadLetterError, match=f"cannot replay to {topic_name('gone')}"):
        dlq.replay([replace(letter, headers=elsewhere)], actor="tester")
    assert not DeadLetterAction.objects.exists()
    assert dlq.pending(letter.dlq_topic) == [letter]
