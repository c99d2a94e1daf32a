"""Separate processes: convergence on writes and deletes, and the whole derivation chain."""

import json
import signal
import time
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from eventplatform.kafka.config import client_options, topic_name
from kvconfig.stores import get_store
from tests.helpers import wait_until

from .conftest import topic_records


class Watch:
    """The state another process's store shows, rebuilt from ``manage.py kv watch``."""

    def __init__(self, process):
        self.path = Path(process.log_path)

    def state(self) -> dict | None:
        entries = None
        for line in self.path.read_text().splitlines():
            if not line.startswith("{"):
                continue  # log lines
            event = json.loads(line)
            if "ready" in event:
                entries = dict(event["entries"])
            elif entries is not None:
                if event["new"] is None:
                    entries.pop(event["key"], None)
                else:
                    entries[event["key"]] = event["new"]
        return entries


def _json_state(store) -> dict:
    return json.loads(json.dumps(dict(store.snapshot())))


def test_two_processes_converge_on_every_write_and_delete(kafka, spawn_manage, manage):
    store = get_store("supported-countries")
    store.put("US", {"name": "United States"}, editor="t")
    watch = Watch(spawn_manage("kv", "watch", "supported-countries"))
    wait_until(lambda: watch.state() is not None, timeout=30, message="watcher never ready")
    for i, code in enumerate(["SS", "FR", "DE", "JP"]):
        store.put(code, {"name": f"country {i}"}, editor="t")
    store.put("SS", {"name": "South Sudan"}, editor="t")
    store.delete("US", editor="t")
    store.delete("DE", editor="t")
    manage("kv", "set", "supported-countries", "BR", '{"name": "Brazil"}')  # a third process
    wait_until(lambda: "BR" in store, timeout=10, message="the CLI's write never arrived")
    expected = {
        "SS": {"name": "South Sudan"},
        "FR": {"name": "country 1"},
        "JP": {"name": "country 3"},
        "BR": {"name": "Brazil"},
    }
    assert _json_state(store) == expected
    wait_until(lambda: watch.state() == expected, timeout=10, message="watcher diverged")


@pytest.mark.django_db
def test_admin_to_derived_time_zones_to_another_process_and_back(
    kafka, staff_client, spawn_manage, client
):
    deriver = spawn_manage("derive_time_zones")
    watch = Watch(spawn_manage("kv", "watch", "time-zones"))
    wait_until(lambda: watch.state() is not None, timeout=30, message="watcher never ready")

    response = staff_client.post(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "South Sudan"}
    )
    assert response.status_code == 302
    juba = {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}
    wait_until(
        lambda: watch.state() == {"SS": juba},
        timeout=30,
        message=f"time zones never derived: {Path(deriver.log_path).read_text()[-2000:]}",
    )
    wait_until(lambda: client.get("/api/kv/time-zones/SS").status_code == 200, timeout=10)
    assert client.get("/api/kv/time-zones/SS").json()["value"] == juba
    assert topic_records("time-zones") == [("SS", juba)]

    response = staff_client.post("/admin/kv/supported-countries/SS/delete/")
    assert response.status_code == 302
    wait_until(lambda: watch.state() == {}, timeout=30, message="time zones never deleted")
    wait_until(lambda: client.get("/api/kv/time-zones/SS").status_code == 404, timeout=10)


def test_a_restarted_deriver_writes_nothing_when_everything_matches(kafka, spawn_manage):
    countries = get_store("supported-countries")
    countries.put_many([("SS", {"name": "South Sudan"}), ("FR", {"name": "France"})], editor="t")
    zones = get_store("time-zones")
    zones.put("FR", {"zones": ["Europe/Paris"], "primary": "Europe/Paris"}, editor="t")
    # An orphan left by a delete the deriver missed while it was down.
    zones.put("DE", {"zones": ["Europe/Berlin"], "primary": "Europe/Berlin"}, editor="t")

    first = spawn_manage("derive_time_zones")
    wait_until(lambda: "SS" in zones and "DE" not in zones, timeout=30)
    first.kill()
    first.wait()
    records = len(topic_records("time-zones"))
    assert records == 4  # FR, DE, SS written, DE deleted

    second = spawn_manage("derive_time_zones")
    log = Path(second.log_path)
    wait_until(lambda: "time zones reconciled" in log.read_text(), timeout=30)
    assert "unchanged=2" in log.read_text()
    time.sleep(0.5)
    assert len(topic_records("time-zones")) == records


def test_consume_derive_time_zones_follows_changes_and_stops_cleanly_on_sigterm(
    kafka, spawn_manage
):
    deriver = spawn_manage("consume", "derive_time_zones")
    get_store("supported-countries").put("JP", {"name": "Japan"}, editor="t")
    zones = get_store("time-zones")
    tokyo = {"zones": ["Asia/Tokyo"], "primary": "Asia/Tokyo"}
    wait_until(
        lambda: topic_records("time-zones") == [("JP", tokyo)],
        timeout=30,
        message="consume derive_time_zones never derived JP",
    )
    # The reconcile after assignment may have written JP before the record was read.
    wait_until(
        lambda: "country synced country=JP" in Path(deriver.log_path).read_text(),
        timeout=30,
        message="the deriver never handled JP's record",
    )
    deriver.send_signal(signal.SIGTERM)
    assert deriver.wait(timeout=30) == 0
    assert "consumer stopped" in Path(deriver.log_path).read_text()
    # The record was committed once its write was confirmed, before the member left.
    topic = topic_name("kv.supported-countries")
    reader = KafkaConsumer(
        **client_options(), group_id=topic_name("group.derive_time_zones"), enable_auto_commit=False
    )
    try:
        assert reader.committed(TopicPartition(topic, 0)) == 1
    finally:
        reader.close()
    assert zones.get("JP")["primary"] == "Asia/Tokyo"


def test_changes_made_while_the_deriver_was_down_are_derived_when_it_returns(kafka, spawn_manage):
    countries = get_store("supported-countries")
    countries.put("FR", {"name": "France"}, editor="t")
    first = spawn_manage("derive_time_zones")
    wait_until(lambda: "FR" in get_store("time-zones"), timeout=30)
    first.kill()  # SIGKILL: no goodbye, no final commit
    first.wait()
    countries.delete("FR", editor="t")
    countries.put("BR", {"name": "Brazil"}, editor="t")

    spawn_manage("derive_time_zones")
    zones = get_store("time-zones")
    wait_until(lambda: "BR" in zones and "FR" not in zones, timeout=30)
    assert zones["BR"]["primary"] == "America/Sao_Paulo"
