"""What one console snapshot says about the platform, section by section, on a real broker
and database: the registered consumers, topic configs, the outbox, stuck imports and the
supervised processes."""

import json
import os
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.utils import timezone

from eventplatform.console.snapshot import Collector
from eventplatform.kafka.config import topic_name
from eventplatform.models import OutboxEvent
from tests.helpers import RunningConsumer, wait_until
from tests.runtime_app.consumers import RecordingConsumer

from .kafka_helpers import produce

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


@pytest.fixture
def collector():
    collector = Collector()
    yield collector
    collector.close()


def test_groups_are_the_registered_consumers_positioned_in_their_partitions(kafka, collector):
    produce("test.records", [f"v{i}" for i in range(30)], key="one-partition")
    with RunningConsumer(RecordingConsumer(store_offsets=True)) as runtime:
        wait_until(lambda: runtime.stats.records == 30)
        snapshot = wait_until(
            lambda: (
                (s := collector.collect())
                and any(g["name"] == "test-recorder" and g["lag"] == 0 for g in s["groups"])
                and s
            ),
            interval=0.5,
        )
    assert snapshot["errors"] == {}
    groups = {group["name"]: group for group in snapshot["groups"]}
    assert {"project_installed_apps", "import_contacts", "relay_notifications"} <= set(groups)
    assert {"derive_time_zones", "test-recorder"} <= set(groups)
    recorder = groups["test-recorder"]
    assert recorder["group"] == topic_name("group.test-recorder")
    [busy] = [p for p in recorder["partitions"] if p["position"]]
    # Offsets kept beside the effects are the position, whatever the group committed.
    assert busy["stored"] == 30
    assert busy["position"] == 30
    assert busy["lag"] == 0
    assert recorder["last_record_at"] is not None
    assert recorder["chart"]["lag"]


def test_topics_show_their_partitions_and_configs(kafka, collector):
    topics = {topic["name"]: topic for topic in collector.collect()["topics"]}
    metadata = topics[topic_name("sites.metadata")]
    assert metadata["partitions"] == 6
    assert metadata["config"]["cleanup.policy"] == "compact"
    dlq = topics[topic_name("sites.metadata.dlq")]
    assert dlq["config"]["cleanup.policy"] == "delete"
    assert int(dlq["config"]["retention.ms"]) > 0


def test_outbox_backlog_set_aside_rows_and_stuck_imports(kafka, collector):
    OutboxEvent.objects.create(topic="sites.metadata", key="a", value=b"{}")
    OutboxEvent.objects.create(
        topic="sites.metadata", key="b", value=b"{}", set_aside_at=timezone.now(), error="too big"
    )
    OutboxEvent.objects.filter(key="a").update(created_at=timezone.now() - timedelta(minutes=5))
    job = apps.get_model("contacts", "ImportJob")
    owner = get_user_model().objects.create_user("erin")
    stuck = job.objects.create(
        owner=owner,
        file="stuck.csv",
        original_name="stuck.csv",
        channel="c1",
        progressed_at=timezone.now() - timedelta(minutes=10),
    )
    job.objects.create(owner=owner, file="fresh.csv", channel="c2", progressed_at=timezone.now())

    snapshot = collector.collect()
    outbox = snapshot["outbox"]
    assert (outbox["backlog"], outbox["set_aside"]) == (1, 1)
    assert outbox["oldest_unsent_seconds"] >= 300
    assert outbox["set_aside_rows"][0]["error"] == "too big"
    [listed] = snapshot["stuck_imports"]
    assert listed["id"] == str(stuck.id)
    assert listed["file"] == "stuck.csv"
    assert listed["silent_seconds"] >= 600


def test_processes_the_supervisor_restarted_are_shown(kafka, collector, settings, tmp_path):
    settings.PLATFORM_STATUS_FILE = tmp_path / "processes.json"
    settings.PLATFORM_STATUS_FILE.write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "processes": {
                    "importer": {"state": "failing", "restarts": 7, "problem": "exit 1"},
                    "relay": {"state": "running", "restarts": 0},
                },
            }
        )
    )
    snapshot = collector.collect()
    assert snapshot["processes"]["importer"]["restarts"] == 7
    assert snapshot["readiness"]["degraded"]["importer"] == "failing (7 restarts)"
