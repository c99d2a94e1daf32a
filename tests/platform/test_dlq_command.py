"""``manage.py dlq``: records a consumer dead-lettered are listed, shown, replayed once to a
fixed consumer, discarded, and every action is audited; user errors are one line, exit 1."""

import json

import pytest

from eventplatform.kafka.config import dlq_name, topic_name
from eventplatform.models import DeadLetterAction
from tests.helpers import RunningConsumer, read_topic, wait_until
from tests.runtime_app.consumers import RecordingConsumer
from tests.runtime_app.models import AppliedRecord

from .kafka_helpers import produce

TOPIC = "test.records"


def _dead_letter(values: list[str]) -> None:
    """Run a consumer that rejects the first of ``values`` (the others are poison) until
    it has dead-lettered them all."""
    produce(TOPIC, ["ok-1", *values, "ok-2"], key="one-partition")
    consumer = RecordingConsumer()
    consumer.reject = values[0]
    with RunningConsumer(consumer, max_retries=0):
        wait_until(
            lambda: len(read_topic(dlq_name(topic_name(TOPIC)))) >= len(values),
            interval=0.5,
            message="nothing reached the DLQ",
        )


@pytest.mark.django_db(transaction=True)
def test_list_show_replay_and_discard(kafka, manage):
    _dead_letter(["bad-1", "poison-2"])

    listed = manage("dlq", "list").stdout
    assert f"{TOPIC}.dlq\t2 pending\t0 handled" in listed.splitlines()

    shown_lines = manage("dlq", "show", TOPIC, "--json").stdout.splitlines()
    shown = [json.loads(line) for line in shown_lines]
    by_value = {record["value"]: record for record in shown}
    assert set(by_value) == {"bad-1", "poison-2"}
    assert "handler rejects 'bad-1'" in by_value["bad-1"]["error"]
    assert "cannot decode 'poison-2'" in by_value["poison-2"]["headers"]["dlq.error"]
    assert by_value["bad-1"]["source"].startswith(f"{topic_name(TOPIC)}[")
    assert by_value["bad-1"]["key"] == "one-partition"

    # The consumer is fixed (it accepts bad-1 now); the replay delivers the record once.
    replayed = manage("dlq", "replay", f"{TOPIC}.dlq", by_value["bad-1"]["ref"])
    assert f"1 record(s) of {TOPIC}.dlq replayed" in replayed.stdout
    with RunningConsumer(RecordingConsumer()) as runtime:
        wait_until(lambda: AppliedRecord.objects.filter(value="bad-1").exists())
        wait_until(lambda: runtime.lag() == 0)
    assert AppliedRecord.objects.filter(value="bad-1").count() == 1
    copies = [r for r in read_topic(topic_name(TOPIC)) if r.value == b"bad-1"]
    assert len(copies) == 2  # the original and the replay, with the original key
    assert copies[1].key == b"one-partition"
    assert dict(copies[1].headers)["dlq.replayed_from"].startswith(
        f"{dlq_name(topic_name(TOPIC))}[".encode()
    )

    discarded = manage("dlq", "discard", TOPIC, "--all")
    assert f"1 record(s) of {TOPIC}.dlq discarded" in discarded.stdout
    assert f"{TOPIC}.dlq\t0 pending\t2 handled" in manage("dlq", "list").stdout.splitlines()
    assert "no pending records" in manage("dlq", "show", TOPIC).stdout

    audit = {row.action: row for row in DeadLetterAction.objects.all()}
    assert set(audit) == {"replay", "discard"}
    assert audit["replay"].actor.startswith("cli")
    assert audit["replay"].replayed_to.startswith(f"{topic_name(TOPIC)}[")
    assert audit["discard"].source.startswith(f"{topic_name(TOPIC)}[")

    # Replaying a record again is refused, by name, and produces nothing.
    again = manage("dlq", "replay", TOPIC, by_value["bad-1"]["ref"], check=False)
    assert again.returncode == 1
    assert "was already replayed by cli" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "no.such.topic"), "no DLQ named 'no.such.topic'"),
        (("replay", TOPIC, "zero"), "'zero' is not a record reference (partition:offset)"),
        (("replay", TOPIC, "0:99"), "holds no record 0:99"),
        (("discard", TOPIC), "name the records (PARTITION:OFFSET ...) or give --all"),
        (("replay", TOPIC, "0:0", "--all"), "or give --all, not both"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(kafka, manage, args, message):
    result = manage("dlq", *args, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""
