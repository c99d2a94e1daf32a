"""The projector as the real command in its own process: killed, isolated, rebuilt."""

import random
import re
import signal
import threading
import uuid

from django.db import transaction

from eventplatform.replica import wait_for_replay
from eventplatform.routers import PROJECTIONS
from sites import services
from sites.models import AppInstallation, Site
from sites.projection.generations import live_generation
from sites.projection.models import InstalledApp, ProjectedSite, ProjectionState

from ..helpers import wait_until
from .conftest import all_databases
from .test_projection import apps_of, snapshot

pytestmark = all_databases

APPS = ["blog", "stores", "forms", "events", "chat", "video", "bookings"]


def source_rows() -> tuple[dict, set]:
    """What the source of truth says: site versions, and installs with their site version."""
    sites = dict(Site.objects.values_list("id", "version"))
    apps = set(
        AppInstallation.objects.values_list("site_id", "app_id", "installed_at", "site__version")
    )
    return sites, apps


def projected_rows() -> tuple[dict, set]:
    """What the live generation of the projection says, read from the primary."""
    generation = live_generation()
    sites = dict(
        ProjectedSite.objects.using(PROJECTIONS)
        .filter(generation=generation, deleted=False)
        .values_list("site_id", "version")
    )
    apps = set(
        InstalledApp.objects.using(PROJECTIONS)
        .filter(generation=generation)
        .values_list("site_id", "app_id", "installed_at", "site_version")
    )
    return sites, apps


def stored_offsets_total() -> int:
    from eventplatform.models import ConsumerOffset

    return sum(
        ConsumerOffset.objects.using(PROJECTIONS)
        .filter(group__endswith="group.project_installed_apps")
        .values_list("next_offset", flat=True)
    )


def random_changes(rng: random.Random, site_ids: list, count: int) -> int:
    """Apply ``count`` random service calls (each one event); return how many ran."""
    done = 0
    while done < count:
        site_id = rng.choice(site_ids)
        action = rng.random()
        try:
            if action < 0.45:
                services.install_app(
                    site_id=site_id, app_id=rng.choice(APPS), settings={"n": rng.random()}
                )
            elif action < 0.75:
                services.uninstall_app(site_id=site_id, app_id=rng.choice(APPS))
            elif action < 0.99:
                services.update_site(site_id=site_id, name=f"name {rng.random()}")
            else:
                services.delete_site(site_id=site_id)
                site_ids.remove(site_id)
        except (services.AppNotInstalled, services.SiteNotFound):
            continue
        done += 1
    return done


def test_projector_killed_three_times_while_5000_events_stream_in_loses_nothing(
    kafka, spawn_manage
):
    rng = random.Random(3)
    spawn_manage("relay_outbox")
    projector = spawn_manage("project_installed_apps")
    with transaction.atomic():
        site_ids = [services.create_site(name=f"s{i}", owner=None).id for i in range(200)]
    events = len(site_ids)
    kills, last_progress = 0, 0
    for round_no in range(24):
        with transaction.atomic():
            events += random_changes(rng, site_ids, 200)
        if round_no in (5, 12, 19):
            # Kill only once the projector has committed something since its last start, so
            # each kill lands in a running projector, most likely mid-batch.
            wait_until(
                lambda since=last_progress: stored_offsets_total() > since,
                timeout=60,
                message="projector made no progress",
            )
            last_progress = stored_offsets_total()
            projector.send_signal(signal.SIGKILL)
            projector.wait()
            kills += 1
            projector = spawn_manage("project_installed_apps")
    assert (kills, events) == (3, 5000)

    wait_until(
        lambda: projected_rows() == source_rows(),
        timeout=120,
        interval=0.5,
        message="projection never matched the source database",
    )
    sites, apps = projected_rows()
    assert len(sites) == Site.objects.count() > 100
    assert len(apps) == AppInstallation.objects.count() > 100


def test_projector_runs_with_the_default_database_unreachable(
    kafka, spawn_manage, send_raw, client
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])), (str(site), b"not an event"))
    projector = spawn_manage(
        "project_installed_apps",
        env={"DATABASE_URL": "postgres://nobody@127.0.0.1:9/no_such_database"},
    )
    wait_until(
        lambda: apps_of(client, site) is not None or projector.poll() is not None,
        timeout=60,
        message="the projector did not project",
    )
    assert projector.poll() is None, "the projector exited; see " + projector.log_path
    assert apps_of(client, site) == (1, ["blog"])


def test_rebuild_switches_to_an_identical_projection_while_reads_keep_answering(
    kafka, spawn_manage, send_raw, manage, client
):
    stable = sorted(uuid.uuid4() for _ in range(300))
    moving = sorted(uuid.uuid4() for _ in range(20))
    send_raw(*((str(s), snapshot(s, 2, ["blog", "forms"])) for s in stable))
    send_raw(*((str(s), snapshot(s, 1, ["chat"])) for s in moving))
    spawn_manage("project_installed_apps")
    # The sites are spread over the topic's partitions: each may come in a batch of its own.
    wait_until(
        lambda: len(projected_rows()[0]) == len(stable) + len(moving),
        timeout=60,
        message="the projector did not project every site",
    )
    wait_for_replay()  # the reads below go to the replica
    before = projected_rows()

    rebuild = {}
    runner = threading.Thread(
        target=lambda: rebuild.setdefault("result", manage("project_installed_apps", "--rebuild"))
    )
    runner.start()
    reads, saw_building, updated = 0, False, False
    while runner.is_alive():
        state = ProjectionState.objects.using(PROJECTIONS).first()
        saw_building |= state is not None and state.building_generation is not None
        if saw_building and not updated:
            # Changes while the rebuild runs: the live projector must carry them into the
            # new generation too.
            send_raw(*((str(s), snapshot(s, 2, ["video"])) for s in moving))
            updated = True
        site = stable[reads % len(stable)]
        assert apps_of(client, site) == (2, ["blog", "forms"])
        reads += 1
    runner.join()

    assert "generation 2 is live" in rebuild["result"].stdout
    # Its progress: every record of the topic replayed (those sent meanwhile may be too).
    counts = re.findall(
        r"rebuilding the installed-apps projection: (\d+) records", rebuild["result"].stderr
    )
    assert counts and int(counts[-1]) >= len(stable) + len(moving), rebuild["result"].stderr
    assert saw_building and reads > 20
    assert live_generation() == 2
    wait_until(
        lambda: all(apps_of(client, site) == (2, ["video"]) for site in moving),
        timeout=30,
        message="a change sent during the rebuild is missing from the new generation",
    )
    after_sites, after_apps = projected_rows()
    assert {s: v for s, v in after_sites.items() if s in stable} == {
        s: v for s, v in before[0].items() if s in stable
    }
    assert {a for a in after_apps if a[0] in stable} == {a for a in before[1] if a[0] in stable}
    assert {(a[0], a[1]) for a in after_apps if a[0] in moving} == {(s, "video") for s in moving}
    # The old generation is gone.
    assert not InstalledApp.objects.using(PROJECTIONS).filter(generation=1).exists()
