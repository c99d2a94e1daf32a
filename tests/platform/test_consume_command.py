"""``manage.py consume``: every registered consumer by name, and the list of them."""

import io
import signal
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands, load_command_class
from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.command import ConsumerCommand
from eventplatform.kafka.config import client_options, topic_name
from eventplatform.kafka.consumer import BatchConsumer
from eventplatform.kafka.registry import get_declaration, register, registered
from tests.helpers import wait_until
from tests.runtime_app.consumers import RecordingConsumer
from tests.runtime_app.models import AppliedRecord

from .kafka_helpers import produce


def test_list_shows_each_consumer_with_its_topics_group_and_what_it_does():
    out = io.StringIO()
    call_command("consume", "--list", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["NAME", "TOPICS", "GROUP", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) >= {
        "derive_time_zones",
        "import_contacts",
        "project_installed_apps",
        "relay_notifications",
        "test-recorder",
    }
    deriver = rows["derive_time_zones"].split(maxsplit=3)
    assert deriver[1] == topic_name("kv.supported-countries")
    assert deriver[2] == topic_name("group.derive_time_zones")
    assert deriver[3].startswith("kv.supported-countries changes → each country's time zones")
    assert rows["test-recorder"].split(maxsplit=3)[1:3] == [
        topic_name("test.records"),
        topic_name("group.test-recorder"),
    ]


def test_every_named_consumer_command_runs_a_registered_consumer():
    named = {
        name: load_command_class(app, name)
        for name, app in get_commands().items()
        if not app.startswith("django.")
    }
    consumer_commands = {
        name: command.consumer_class
        for name, command in named.items()
        if isinstance(command, ConsumerCommand) and hasattr(command, "consumer_class")
    }
    assert {"derive_time_zones", "import_contacts", "relay_notifications"} <= set(consumer_commands)
    for name, consumer_class in consumer_commands.items():
        assert get_declaration(consumer_class.name).consumer_class is consumer_class, name


def test_a_taken_name_cannot_be_registered_by_another_class():
    registered()  # every app's declarations

    class Impostor(BatchConsumer):
        name = "derive_time_zones"

    with pytest.raises(ValueError, match="'derive_time_zones' is taken by TimeZoneDeriver"):
        register(Impostor)
    assert get_declaration("derive_time_zones").consumer_class.__name__ == "TimeZoneDeriver"


def test_an_unknown_name_is_one_line_and_exit_code_1(manage):
    result = manage("consume", "no-such-consumer", check=False)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("CommandError: no consumer named 'no-such-consumer' (known: ")
    assert "derive_time_zones" in line and "test-recorder" in line
    missing = manage("consume", check=False)
    assert missing.returncode == 1
    assert len(missing.stderr.strip().splitlines()) == 1


def _committed(group: str, topic: str) -> int:
    reader = KafkaConsumer(**client_options(), group_id=group, enable_auto_commit=False)
    try:
        partitions = reader.partitions_for_topic(topic)
        return sum(reader.committed(TopicPartition(topic, p)) or 0 for p in partitions)
    finally:
        reader.close()


@pytest.mark.django_db(transaction=True)
def test_consume_runs_the_named_consumer_and_stops_cleanly_on_sigterm(kafka, spawn_manage):
    produce("test.records", [f"v{i}" for i in range(30)])
    process = spawn_manage("consume", "test-recorder")
    wait_until(
        lambda: AppliedRecord.objects.count() == 30,
        timeout=60,
        message="consume test-recorder did not apply the 30 records",
    )
    group, topic = RecordingConsumer().group_id, topic_name("test.records")
    wait_until(lambda: _committed(group, topic) == 30, timeout=20)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert "consumer stopped" in Path(process.log_path).read_text()
    assert sorted(AppliedRecord.objects.values_list("value", flat=True)) == sorted(
        f"v{i}" for i in range(30)
    )
