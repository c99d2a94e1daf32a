"""The projector never skips history: emptied databases, recreated topics, newer versions."""

import signal
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connections, transaction
from kafka.partitioner.default import murmur2

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.topics import declared_topics
from eventplatform.routers import PROJECTIONS
from sites.projection.consumer import InstalledAppsProjector
from sites.projection.models import ProjectedSite
from sites.topics import SITES_METADATA
from tests.helpers import RunningConsumer, recreate_topic, wait_until

from .conftest import all_databases

pytestmark = all_databases

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def snapshot(site_id: uuid.UUID, site_version: int, **envelope) -> Event:
    data = {
        "site_id": str(site_id),
        "version": site_version,
        "name": "n",
        "owner": "o",
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "apps": [{"app_id": "stores", "installed_at": T0.isoformat(), "settings": {}}],
    }
    data.update(envelope.pop("extra_data", {}))
    return Event(type="SiteMetadataChanged", data=data, **envelope)


def _partition(site_id: uuid.UUID) -> int:
    """The sites.metadata partition of a site's key, as the default partitioner picks it."""
    partitions = next(t.partitions for t in declared_topics() if t.name == SITES_METADATA)
    return (murmur2(str(site_id).encode()) & 0x7FFFFFFF) % partitions


def projected_versions() -> dict[uuid.UUID, int]:
    rows = ProjectedSite.objects.using(PROJECTIONS).values_list("site_id", "version")
    return dict(rows)


def running_projector() -> RunningConsumer:
    return RunningConsumer(InstalledAppsProjector(), poll_timeout_ms=100)


def empty_projections_database() -> None:
    with connections[PROJECTIONS].cursor() as cursor:
        for table in ("eventplatform_consumeroffset",):
            cursor.execute(f"DELETE FROM {table}")
    ProjectedSite.objects.using(PROJECTIONS).all().delete()


def test_an_emptied_projections_database_is_replayed_from_the_start(kafka, send_raw):
    sites = [uuid.uuid4() for _ in range(30)]
    send_raw(*[(str(s), snapshot(s, 1)) for s in sites])
    with running_projector():
        wait_until(lambda: len(projected_versions()) == 30, message="first projection")
    # Restored from an old backup, or emptied by hand: the group's commit in Kafka says
    # "done", but the effects are gone, so the stored offsets (gone too) must win.
    empty_projections_database()
    send_raw(*[(str(s), snapshot(s, 2)) for s in sites[:10]])
    with running_projector():
        wait_until(
            lambda: projected_versions() == {s: (2 if s in sites[:10] else 1) for s in sites},
            timeout=30,
            message="the emptied projection was not replayed from offset 0",
        )


def test_a_topic_deleted_and_recreated_under_a_running_projector_converges(
    kafka, send_raw, topic_prefix
):
    before = [uuid.uuid4() for _ in range(20)]
    send_raw(*[(str(s), snapshot(s, 5)) for s in before])
    with running_projector() as runtime:
        wait_until(lambda: len(projected_versions()) == 20, message="first projection")
        recreate_topic(topic_name(SITES_METADATA))
        # The new log starts at 0, far below the stored offsets: nothing may be skipped.
        after = [uuid.uuid4() for _ in range(5)]
        send_raw(*[(str(s), snapshot(s, 1)) for s in after])
        wait_until(
            lambda: set(after) <= set(projected_versions()),
            timeout=60,
            message="events of the recreated topic were skipped",
        )
        assert runtime.stats.offset_resets >= 1


def test_a_newer_minor_version_is_applied_and_a_newer_major_pauses_its_partition(
    kafka, send_raw, client
):
    site = uuid.uuid4()
    other = next(s for s in iter(uuid.uuid4, None) if _partition(s) != _partition(site))
    send_raw(
        (str(site), snapshot(site, 1, version=2, extra_data={"theme": "dark"})),
        (str(site), snapshot(site, 2, major=2)),
        (str(site), snapshot(site, 3)),  # behind the major-2 event: must wait with it
        (str(other), snapshot(other, 1)),
    )
    with running_projector() as runtime:
        wait_until(
            lambda: projected_versions().get(site) == 1 and other in projected_versions(),
            message="the version-2 event with an extra field was not applied",
        )
        wait_until(lambda: runtime.stats.paused_partitions == 1)
        metrics = client.get("/metrics").content.decode()
    assert projected_versions()[site] == 1  # nothing after the major-2 event was applied
    assert 'eventplatform_consumer_paused_partitions{consumer="project_installed_apps"} 1.0' in (
        metrics
    )


def test_a_rebuild_stops_at_an_event_of_a_newer_major_version_and_says_so(kafka, send_raw):
    from sites.projection.consumer import RebuildBlocked, rebuild
    from sites.projection.generations import live_generation, target_generations

    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1)), (str(site), snapshot(site, 2, major=2)))
    live = live_generation()
    started = time.monotonic()
    with pytest.raises(RebuildBlocked, match=r"\[\d+\] holds an event of a newer major version"):
        rebuild()
    assert time.monotonic() - started < 30
    assert live_generation() == live
    # Nothing is left building: the live projector writes one generation again.
    with transaction.atomic(using=PROJECTIONS):
        assert target_generations() == (live,)
    generations = ProjectedSite.objects.using(PROJECTIONS).values_list("generation", flat=True)
    assert set(generations) <= {live}


def test_a_rebuild_finishes_while_events_keep_arriving(kafka, send_raw):
    from sites.projection.consumer import rebuild
    from sites.projection.generations import live_generation

    seeded = [uuid.uuid4() for _ in range(200)]
    send_raw(*[(str(s), snapshot(s, 1)) for s in seeded])
    stop = threading.Event()

    def write_steadily():
        while not stop.is_set():
            site = uuid.uuid4()
            send_raw((str(site), snapshot(site, 1)))
            time.sleep(0.02)

    writer = threading.Thread(target=write_steadily, daemon=True)
    writer.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        generation = rebuild()
        took = time.monotonic() - started
    finally:
        stop.set()
        writer.join(10)
    assert generation == live_generation()
    assert took < 30, f"the rebuild chased the stream for {took:.0f} s"
    projected = set(
        ProjectedSite.objects.using(PROJECTIONS)
        .filter(generation=generation)
        .values_list("site_id", flat=True)
    )
    assert set(seeded) <= projected


def _rebuild_state():
    from sites.projection.models import ProjectionState

    return ProjectionState.objects.using(PROJECTIONS).get(name="installed_apps")


def _generations() -> set[int]:
    return set(ProjectedSite.objects.using(PROJECTIONS).values_list("generation", flat=True))


def test_a_stalled_rebuild_is_abandoned_once_its_lease_expires_and_cannot_come_back(
    kafka, send_raw, spawn_manage, settings
):
    """A rebuild frozen (or killed) where it cannot clean up: the live projector stops
    writing into its generation once the lease expires and purges it; thawed, the rebuild
    finds it cannot renew, exits 1 and never switches readers to what it built. The next
    rebuild builds everything, whatever the stalled one had stored."""
    from sites.projection.consumer import rebuild
    from sites.projection.generations import live_generation

    settings.PROJECTION_REBUILD_LEASE_SECONDS = 2
    seeded = [uuid.uuid4() for _ in range(10_000)]
    send_raw(*[(str(s), snapshot(s, 1)) for s in seeded])
    live = live_generation()
    rebuilder = spawn_manage(
        "project_installed_apps", "--rebuild", env={"PROJECTION_REBUILD_LEASE_SECONDS": "2"}
    )
    wait_until(
        lambda: _rebuild_state().building_generation is not None,
        timeout=60,
        interval=0.005,
        message="the rebuild never started",
    )
    rebuilder.send_signal(signal.SIGSTOP)
    try:
        assert rebuilder.poll() is None, "the rebuild finished before it could be stalled"
        building = _rebuild_state().building_generation
        late = uuid.uuid4()
        projector = InstalledAppsProjector()
        projector.lapsed_rebuild_check_seconds = 0.2  # a chunk at a time, quickly
        with RunningConsumer(projector, poll_timeout_ms=100):
            time.sleep(2.5)  # the lease expires
            send_raw((str(late), snapshot(late, 1)))
            wait_until(lambda: late in projected_versions(), message="live projection stopped")
            wait_until(
                lambda: building not in _generations(),
                timeout=30,
                message="the live projector never purged the stalled rebuild's generation",
            )
        # Written once, into the live generation only.
        assert ProjectedSite.objects.using(PROJECTIONS).filter(site_id=late).count() == 1
    finally:
        rebuilder.send_signal(signal.SIGCONT)
    assert rebuilder.wait(timeout=60) == 1
    log = Path(rebuilder.log_path).read_text()
    assert "lost its lease (it stalled for longer than 2 s" in log, log
    assert "Traceback" not in log
    assert live_generation() == live
    assert _generations() == {live}

    settings.PROJECTION_REBUILD_LEASE_SECONDS = 120
    generation = rebuild()
    assert generation == live_generation()
    rebuilt = ProjectedSite.objects.using(PROJECTIONS).filter(generation=generation)
    assert set(rebuilt.values_list("site_id", flat=True)) == {*seeded, late}


def test_two_projectors_split_the_partitions_and_survive_sigkill_of_both(
    kafka, send_raw, spawn_manage
):
    sites = [uuid.uuid4() for _ in range(120)]
    first, second = spawn_manage("project_installed_apps"), spawn_manage("project_installed_apps")
    wait_until(
        lambda: all(_assigned_some(p.log_path) for p in (first, second)),
        timeout=60,
        message="the two projectors did not share the partitions",
    )
    for version in range(1, 6):
        send_raw(*[(str(s), snapshot(s, version)) for s in sites])
        if version == 3:
            wait_until(lambda: len(projected_versions()) > 0, timeout=30)
            for process in (first, second):
                process.send_signal(signal.SIGKILL)
                process.wait()
    spawn_manage("project_installed_apps")
    wait_until(
        lambda: projected_versions() == {s: 5 for s in sites},
        timeout=90,
        interval=0.5,
        message="the projection never matched the source after both were killed",
    )


def _assigned_some(log_path: str) -> bool:
    """Whether the process's latest assignment gave it at least one partition."""
    lines = Path(log_path).read_text().splitlines()
    assignments = [line for line in lines if "partitions assigned" in line]
    return bool(assignments) and 'partitions=""' not in assignments[-1]


def test_a_rebuild_whose_lease_expired_can_neither_renew_nor_switch(settings):
    from sites.projection.generations import (
        RebuildLeaseLapsed,
        live_generation,
        renew_rebuild,
        start_rebuild,
        switch_to,
        target_generations,
    )

    settings.PROJECTION_REBUILD_LEASE_SECONDS = 3
    live = live_generation()
    building = start_rebuild()
    assert renew_rebuild(building)
    with transaction.atomic(using=PROJECTIONS):
        assert target_generations() == (live, building)
    time.sleep(3.5)
    with transaction.atomic(using=PROJECTIONS):
        assert target_generations() == (live,)
    assert not renew_rebuild(building)
    with pytest.raises(RebuildLeaseLapsed, match="did not renew its lease within 3 s"):
        switch_to(building)
    assert live_generation() == live
    # Its number stays taken: the next rebuild is told apart from it.
    assert start_rebuild() == building + 1
