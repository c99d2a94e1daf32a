"""The read API's site documents served from the web process's memory: fresh as soon as the
projector announces a change, bypassed while announcements cannot be heard, bounded in size.

Whether a read was served from memory is seen as a user of the database would: by whether
it queried the replica.
"""

import logging
import threading
import time
import uuid

import pytest
import redis
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from eventplatform.embedded.ports import free_port
from eventplatform.replica import wait_for_replay
from eventplatform.routers import PROJECTIONS, PROJECTIONS_REPLICA
from sites.events import SiteChange, site_deleted
from sites.projection import announcements
from sites.projection.consumer import rebuild
from sites.projection.generations import target_generations
from sites.projection.writer import project
from tests.faults.conftest import PrivateRedis

from ..helpers import wait_until
from .conftest import all_databases
from .test_projection import T0, snapshot

pytestmark = all_databases


def site_url(site_id, query: str = "") -> str:
    return f"/api/installed-apps/sites/{site_id}{query}"


def read(client, site_id, query: str = "", **headers):
    """A read of the site's document, and whether it queried the replica."""
    with CaptureQueriesContext(connections[PROJECTIONS_REPLICA]) as queries:
        response = client.get(site_url(site_id, query), headers=headers)
    return response, len(queries) > 0


def served_from_memory(client, site_id) -> bool:
    return not read(client, site_id)[1]


def wait_until_kept(client, *site_ids) -> None:
    """Read until every site is served from memory (once the subscription is up)."""
    for site_id in site_ids:
        wait_until(
            lambda s=site_id: served_from_memory(client, s),
            timeout=30,
            message=f"{site_id} was never served from memory",
        )


def project_unannounced(site_id: uuid.UUID, version: int, apps: list[str]) -> None:
    """Write a version as the projector does, but with no announcement: as if it was lost."""
    change = SiteChange(
        site_id=site_id, version=version, deleted=False, apps=tuple((a, T0) for a in apps)
    )
    with transaction.atomic(using=PROJECTIONS):
        project(changes=[change], generations=target_generations())
    wait_for_replay()


@pytest.fixture
def site(kafka, send_raw, project_all) -> uuid.UUID:
    """A site the projector projected at version 1, with the app ``blog``."""
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()
    return site


def test_a_kept_document_is_replaced_as_soon_as_the_projector_applies_a_new_version(
    client, site, send_raw, project_all
):
    wait_until_kept(client, site)
    first, _ = read(client, site)
    held, queried = read(client, site, **{"If-None-Match": first["ETag"]})
    assert (held.status_code, held.content, held["ETag"], queried) == (
        304,
        b"",
        first["ETag"],
        False,
    )

    send_raw((str(site), snapshot(site, 2, ["blog", "stores"])))
    project_all()
    # No waiting: the announcement reached this process before the projector went on.
    changed, queried = read(client, site, **{"If-None-Match": first["ETag"]})
    assert (changed.status_code, changed.json()["version"], queried) == (200, 2, True)
    assert changed["ETag"] != first["ETag"]
    again, queried = read(client, site)
    assert (again.json()["version"], again["ETag"], queried) == (2, changed["ETag"], False)

    send_raw((str(site), snapshot(site, 3, [])), (str(site), snapshot(site, 4, ["forms"])))
    project_all()
    assert read(client, site)[0].json()["version"] == 4


def test_a_deletion_is_served_from_memory_as_a_404_and_unknown_sites_are_never_kept(
    client, site, send_raw, project_all
):
    unknown = uuid.uuid4()
    wait_until_kept(client, site)
    send_raw((str(site), site_deleted(site_id=site, version=2)))
    project_all()

    assert read(client, site)[0].status_code == 404
    wait_until_kept(client, site)
    assert read(client, site)[0].status_code == 404
    response, _ = read(client, site, "?min_version=3")
    assert (response.status_code, response.json()["version"]) == (409, 2)
    for _ in range(3):
        response, queried = read(client, unknown)
        assert (response.status_code, queried) == (404, True)


def test_a_rebuild_switch_serves_the_new_generations_etag(client, site):
    wait_until_kept(client, site)
    before, _ = read(client, site)

    generation = rebuild()
    wait_for_replay()
    after, queried = read(client, site, **{"If-None-Match": before["ETag"]})
    assert (after.status_code, after["ETag"], queried) == (200, f'"{generation}.1"', True)
    assert after["ETag"] != before["ETag"]
    assert after.json()["apps"] == before.json()["apps"]


def test_min_version_above_a_kept_copy_gets_the_replicas_newer_answer(client, site):
    wait_until_kept(client, site)
    project_unannounced(site, 2, ["blog", "stores"])  # announcement lost: the copy is stale
    assert read(client, site)[0].json()["version"] == 1

    # A client that needs version 2 gets it from the replica, never the older copy...
    response, queried = read(client, site, "?min_version=2")
    assert (response.status_code, response.json()["version"], queried) == (200, 2, True)
    # ...and the newer answer replaces the copy for everyone.
    assert read(client, site)[0].json()["version"] == 2
    response, _ = read(client, site, **{"X-Min-Version": "3"})
    assert (response.status_code, response.json()["version"]) == (409, 2)


def test_a_copy_whose_announcement_was_lost_lasts_no_longer_than_the_time_limit(
    client, site, settings
):
    settings.READ_API_DOCUMENT_CACHE_SECONDS = 1
    wait_until_kept(client, site)
    project_unannounced(site, 2, ["forms"])
    wait_until(
        lambda: read(client, site)[0].json()["version"] == 2,
        timeout=30,
        message="the kept copy outlived its time limit",
    )


def test_a_projector_given_partitions_has_copies_its_predecessor_never_announced_dropped(
    client, site, send_raw, project_all
):
    wait_until_kept(client, site)
    project_unannounced(site, 2, ["forms"])  # a projector died between commit and announcement
    response, queried = read(client, site)
    assert (response.json()["version"], queried) == (1, False)

    # Its successor is given the partitions and goes on with the next change of any site.
    other = uuid.uuid4()
    send_raw((str(other), snapshot(other, 1, ["blog"])))
    project_all()
    response, queried = read(client, site)
    assert (response.json()["version"], queried) == (2, True)


def test_without_a_time_limit_every_read_queries_the_replica(client, site, settings):
    settings.READ_API_DOCUMENT_CACHE_SECONDS = 0
    for _ in range(20):
        response, queried = read(client, site)
        assert (response.status_code, queried) == (200, True)


def test_memory_holds_at_most_the_configured_number_of_documents(
    kafka, client, send_raw, project_all, settings
):
    settings.READ_API_DOCUMENT_CACHE_ENTRIES = 3
    sites = [uuid.uuid4() for _ in range(5)]
    send_raw(*((str(s), snapshot(s, 1, ["blog"])) for s in sites))
    project_all()
    wait_until_kept(client, *sites)

    # The three read last are kept; the two before them made room.
    assert [served_from_memory(client, s) for s in sites[2:]] == [True, True, True]
    for _ in range(50):
        assert read(client, uuid.uuid4())[0].status_code == 404  # a flood of unknown ids
    assert [served_from_memory(client, s) for s in sites[2:]] == [True, True, True]
    assert not served_from_memory(client, sites[0])


@pytest.fixture
def private_redis(tmp_path, settings):
    """A Redis of this test's own, that it may stop and start, as the web's REDIS_URL."""
    server = PrivateRedis(tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    try:
        yield server
    finally:
        server.stop()


def test_while_redis_is_down_documents_come_from_the_replica_and_the_projector_carries_on(
    client, site, send_raw, project_all, private_redis, caplog
):
    wait_until_kept(client, site)

    private_redis.stop()
    response, queried = read(client, site)
    assert (response.json()["version"], queried) == (1, True)
    send_raw((str(site), snapshot(site, 2, ["blog", "stores"])))
    with caplog.at_level(logging.WARNING, logger="sites.projection.announcements"):
        stats = project_all()
    assert (stats.records, stats.dead_lettered) == (1, 0)
    assert "could not announce" in caplog.text
    for _ in range(5):
        response, queried = read(client, site)
        assert (response.json()["version"], queried) == (2, True)

    private_redis.start()  # empty, as after a restart: the subscription is made again
    wait_until_kept(client, site)
    heard = redis.Redis.from_url(private_redis.url).pubsub(ignore_subscribe_messages=True)
    heard.subscribe(announcements.channel())
    send_raw((str(site), snapshot(site, 3, ["forms"])))
    project_all()
    assert read(client, site)[0].json()["version"] == 3

    # What Redis could not take was sent again, before the next announcement.
    versions = []
    deadline = time.monotonic() + 10
    while len(versions) < 2 and time.monotonic() < deadline:
        if message := heard.get_message(timeout=0.5):  # None also for the subscription's
            versions += announcements.decode(message["data"]).versions
    heard.close()
    assert versions == [(site, 2), (site, 3)]


def test_with_redis_unreachable_from_the_start_every_read_queries_the_replica(
    client, site, send_raw, project_all, settings
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    for version in (2, 3):
        for _ in range(10):
            response, queried = read(client, site)
            assert (response.json()["version"], queried) == (version - 1, True)
        send_raw((str(site), snapshot(site, version, ["blog"])))
        project_all()
    assert read(client, site)[0].json()["version"] == 3


def test_resets_queued_while_an_equal_one_is_being_sent_still_go_out(private_redis, monkeypatch):
    # A rebalance queues resets from the client's IO thread while the projector's thread
    # sends; past the limit what waits collapses into one reset, equal to the one in flight.
    heard = redis.Redis.from_url(private_redis.url).pubsub(ignore_subscribe_messages=True)
    heard.subscribe(announcements.channel())
    heard.get_message(timeout=1)  # the subscription is confirmed
    announcements.queue_reset()
    publishing = threading.Event()
    publish = redis.Redis.publish

    def publish_and_say_so(self, *args, **kwargs):
        publishing.set()
        return publish(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "publish", publish_and_say_so)
    # PUBLISH waits while writes are paused: the sender is caught mid-send.
    admin = redis.Redis.from_url(private_redis.url)
    admin.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
    sender = threading.Thread(target=announcements.send_unsent)
    sender.start()
    assert publishing.wait(timeout=10), "the sender never published"
    for _ in range(announcements.UNSENT_LIMIT):  # the last one makes them collapse
        announcements.queue_reset()
    admin.execute_command("CLIENT", "UNPAUSE")
    sender.join(timeout=10)
    announcements.send_unsent()

    resets = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if message := heard.get_message(timeout=0.5):
            resets += announcements.decode(message["data"]).reset
    heard.close()
    assert resets == 2
