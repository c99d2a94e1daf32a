"""The installed-apps projection: events in, read model out, read through the replica."""

import uuid
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext

from eventplatform.kafka.envelope import Event
from eventplatform.models import OutboxEvent
from sites import services
from sites.events import site_deleted
from sites.models import AppInstallation
from sites.projection.api import SiteAppsOut
from sites.projection.models import InstalledApp, ProjectedSite

from .conftest import all_databases, read_dlq

pytestmark = all_databases

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def snapshot(site_id: uuid.UUID, version: int, apps: list[str]) -> Event:
    return Event(
        type="SiteMetadataChanged",
        data={
            "site_id": str(site_id),
            "version": version,
            "name": "n",
            "owner": "o",
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            "apps": [
                {"app_id": app, "installed_at": T0.isoformat(), "settings": {}} for app in apps
            ],
        },
    )


def apps_of(client, site_id) -> tuple[int, list[str]] | None:
    response = client.get(f"/api/installed-apps/sites/{site_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.content
    body = response.json()
    return body["version"], [app["app_id"] for app in body["apps"]]


def all_pages(client, app_id: str, limit: int) -> list[str]:
    url, seen = f"/api/installed-apps/apps/{app_id}/sites?limit={limit}", []
    while url:
        body = client.get(url).json()
        assert len(body["items"]) <= limit
        seen += [item["site_id"] for item in body["items"]]
        cursor = body["next_cursor"]
        url = cursor and f"/api/installed-apps/apps/{app_id}/sites?limit={limit}&cursor={cursor}"
    return seen


def test_rest_write_reaches_the_read_api_through_outbox_relay_and_projector(
    kafka, api, client, relay_all, project_all
):
    def put(site_id, app_id):
        url = f"/api/sites/{site_id}/apps/{app_id}"
        assert api.put(url, "{}", content_type="application/json").status_code == 200

    created = [
        api.post("/api/sites", {"name": f"s{i}"}, content_type="application/json").json()["id"]
        for i in range(5)
    ]
    for site_id in created:
        put(site_id, "blog")
    put(created[0], "stores")
    relay_all()
    project_all()

    assert apps_of(client, created[0]) == (3, ["blog", "stores"])
    assert apps_of(client, created[1]) == (2, ["blog"])
    body = client.get(f"/api/installed-apps/sites/{created[0]}").json()
    assert SiteAppsOut.model_validate(body).projected_at <= datetime.now(UTC)
    installed = AppInstallation.objects.get(site_id=created[0], app_id="stores").installed_at
    assert body["apps"][1]["app_id"] == "stores"
    assert datetime.fromisoformat(body["apps"][1]["installed_at"]) == installed
    assert all_pages(client, "blog", limit=2) == sorted(created)
    assert all_pages(client, "stores", limit=2) == [created[0]]

    assert api.delete(f"/api/sites/{created[0]}/apps/blog").status_code == 204
    assert api.delete(f"/api/sites/{created[1]}").status_code == 204
    relay_all()
    project_all()
    assert apps_of(client, created[0]) == (4, ["stores"])
    assert apps_of(client, created[1]) is None
    assert all_pages(client, "blog", limit=2) == sorted(created[2:])


def test_duplicates_and_reordering_leave_the_newest_version(kafka, client, send_raw, project_all):
    a, b, c = sorted(uuid.uuid4() for _ in range(3))
    send_raw(
        (str(a), snapshot(a, 1, ["x", "y"])),
        (str(a), snapshot(a, 3, ["z"])),
        (str(a), snapshot(a, 2, ["x"])),  # late: older than what is stored
        (str(a), snapshot(a, 3, ["z"])),  # duplicate
        (str(b), snapshot(b, 2, ["x"])),
        (str(b), site_deleted(site_id=b, version=3)),
        (str(b), snapshot(b, 2, ["x"])),  # late: must not resurrect the deleted site
    )
    project_all()
    # A second batch, after the first committed, with more stale and duplicate events.
    send_raw(
        (str(c), snapshot(c, 5, ["x"])),
        (str(a), snapshot(a, 1, ["x", "y"])),
        (str(b), snapshot(b, 1, ["y"])),
        (str(c), snapshot(c, 4, ["q"])),
    )
    project_all()

    assert apps_of(client, a) == (3, ["z"])
    assert apps_of(client, b) is None
    assert apps_of(client, c) == (5, ["x"])
    assert all_pages(client, "x", limit=10) == [str(c)]
    tombstone = ProjectedSite.objects.get(site_id=b)
    assert (tombstone.deleted, tombstone.version) == (True, 3)
    assert not InstalledApp.objects.filter(site_id=b).exists()


def test_malformed_events_go_to_the_dlq_and_later_events_are_projected(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    bad_apps = snapshot(site, 2, ["x"])
    bad_apps.data["apps"][0]["app_id"] = "Not A Slug"
    # A slug and a line break: the pattern's "$" alone would let it through.
    trailing_newline = snapshot(site, 2, ["x"])
    trailing_newline.data["apps"][0]["app_id"] = "x\n"
    send_raw(
        (str(site), snapshot(site, 1, ["x"])),
        (str(site), b"{not json"),
        (str(site), bad_apps),
        (str(site), trailing_newline),
        (str(site), Event(type="SiteExploded", data={"site_id": str(site)})),
        (str(site), snapshot(site, 3, ["y"])),
    )
    stats = project_all()

    assert apps_of(client, site) == (3, ["y"])
    assert stats.dead_lettered == 4
    dead = read_dlq()
    errors = sorted(dict(record.headers)["dlq.error"].decode() for record in dead)
    assert errors == [
        "data.apps[0].app_id must be an app id slug",
        "data.apps[0].app_id must be an app id slug",
        "unknown event type 'SiteExploded' on sites.metadata",
        "value is not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
    ]
    assert {record.key for record in dead} == {str(site).encode()}


def test_times_are_served_in_utc_whatever_zone_or_spelling_the_event_used(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    event = snapshot(site, 1, ["in-paris", "padded", "precise"])
    spelled = {
        "in-paris": "2024-05-01T02:30:00+02:30",
        "padded": "2024-05-01T00:00:00.000000+00:00",
        "precise": "2024-05-01T00:00:00.250000+00:00",
    }
    for app in event.data["apps"]:
        app["installed_at"] = spelled[app["app_id"]]
    send_raw((str(site), event))
    project_all()

    served = client.get(f"/api/installed-apps/sites/{site}").json()["apps"]
    assert {app["app_id"]: app["installed_at"] for app in served} == {
        "in-paris": "2024-05-01T00:00:00+00:00",
        "padded": "2024-05-01T00:00:00+00:00",
        "precise": "2024-05-01T00:00:00.250000+00:00",
    }
    stored = dict(InstalledApp.objects.filter(site_id=site).values_list("app_id", "installed_at"))
    assert stored == {
        "in-paris": T0,
        "padded": T0,
        "precise": T0.replace(microsecond=250000),
    }


def test_an_impossible_date_and_a_nan_are_dead_lettered_with_their_reasons(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    impossible = snapshot(site, 2, ["x"])
    impossible.data["apps"][0]["installed_at"] = "2024-02-30T00:00:00+00:00"
    with_nan = snapshot(site, 3, ["x"]).encode().replace(b'"settings":{}', b'"settings":NaN')
    send_raw(
        (str(site), snapshot(site, 1, ["x"])),
        (str(site), impossible),
        (str(site), with_nan),
        (str(site), snapshot(site, 4, ["y"])),
    )
    stats = project_all()

    assert apps_of(client, site) == (4, ["y"])
    assert stats.dead_lettered == 2
    errors = sorted(dict(record.headers)["dlq.error"].decode() for record in read_dlq())
    assert errors == [
        "data.apps[0].installed_at must be an ISO date",
        "value is not JSON: unexpected character, expected a JSON value: "
        f"line 1 column {with_nan.index(b'NaN') + 1} (char {with_nan.index(b'NaN')})",
    ]


def test_reads_go_to_the_replica_and_writes_through_it_are_refused(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["x"])))
    project_all()

    assert InstalledApp.objects.all().db == "projections_replica"
    assert ProjectedSite.objects.filter(site_id=site).db == "projections_replica"
    # The token is looked up on "default" once, then served from memory: the reads below
    # touch the replica alone.
    assert client.get("/api/me").status_code == 200
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in connections}
    for context in contexts.values():
        context.__enter__()
    try:
        assert apps_of(client, site) == (1, ["x"])
        assert all_pages(client, "x", limit=5) == [str(site)]
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    used = {alias for alias, context in contexts.items() if len(context)}
    assert used == {"projections_replica"}

    assert client.post(f"/api/installed-apps/sites/{site}", {}).status_code == 405
    with (
        pytest.raises(DatabaseError, match="(?i)read-?only"),
        transaction.atomic(using="projections_replica"),
    ):
        InstalledApp.objects.using("projections_replica").filter(site_id=site).delete()
    assert apps_of(client, site) == (1, ["x"])


def test_projector_never_queries_the_default_database(kafka, client, send_raw, project_all):
    def refuse(execute, sql, params, many, context):
        raise AssertionError(f"projector queried default: {sql}")

    site = uuid.uuid4()
    send_raw(
        (str(site), snapshot(site, 1, ["x"])),
        (str(site), b"garbage"),
        (str(site), site_deleted(site_id=site, version=2)),
    )
    with connections["default"].execute_wrapper(refuse):
        stats = project_all()
    assert (stats.records, stats.dead_lettered) == (3, 1)
    assert apps_of(client, site) is None


def test_invalid_read_requests_name_the_field(kafka, client):
    assert client.get("/api/installed-apps/sites/nope").status_code == 422
    response = client.get("/api/installed-apps/apps/blog/sites?cursor=forged")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "cursor"
    response = client.get("/api/installed-apps/apps/blog/sites?limit=0")
    assert response.json()["detail"][0]["loc"][-1] == "limit"
    response = client.get("/api/installed-apps/apps/BAD APP/sites")
    assert response.json()["detail"][0]["loc"][-1] == "app_id"
    assert client.get(f"/api/installed-apps/sites/{uuid.uuid4()}").status_code == 404
    schema = client.get("/api/openapi.json").json()
    assert "/api/installed-apps/sites/{site_id}" in schema["paths"]
    assert "/api/installed-apps/apps/{app_id}/sites" in schema["paths"]


def test_pages_are_stable_while_the_projection_changes(kafka, client, send_raw, project_all):
    sites = sorted(uuid.uuid4() for _ in range(9))
    send_raw(*((str(s), snapshot(s, 1, ["blog"])) for s in sites))
    project_all()

    first = client.get("/api/installed-apps/apps/blog/sites?limit=3").json()
    assert [i["site_id"] for i in first["items"]] == [str(s) for s in sites[:3]]
    # Meanwhile: a site before the cursor loses the app, one after it is deleted, and a
    # new site appears before the cursor. None of that may shift the next pages.
    newcomer = uuid.UUID(int=0)
    send_raw(
        (str(sites[0]), snapshot(sites[0], 2, [])),
        (str(sites[5]), site_deleted(site_id=sites[5], version=2)),
        (str(newcomer), snapshot(newcomer, 1, ["blog"])),
    )
    project_all()
    rest, cursor = [], first["next_cursor"]
    while cursor:
        body = client.get(f"/api/installed-apps/apps/blog/sites?limit=3&cursor={cursor}").json()
        rest += [i["site_id"] for i in body["items"]]
        cursor = body["next_cursor"]
    assert rest == [str(s) for s in sites[3:] if s != sites[5]]


def test_publish_sites_all_rebuilds_a_projection_from_an_empty_topic(
    kafka, client, relay_all, project_all
):
    site = services.create_site(name="s", owner=None)
    services.install_app(site_id=site.id, app_id="blog")
    OutboxEvent.objects.all().delete()  # as if the events had been lost with the topic
    call_command("publish_sites", "--all")
    relay_all()
    project_all()
    assert apps_of(client, site.id) == (2, ["blog"])


def test_a_document_is_revalidated_by_its_etag_until_the_site_changes(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()
    url = f"/api/installed-apps/sites/{site}"
    first = client.get(url)
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    for held in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(url, headers={"If-None-Match": held})
        assert (response.status_code, response.content) == (304, b""), held
        assert response["ETag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).json() == first.json()
    # Read-after-write still wins: a replica behind the asked version never answers 304.
    behind = client.get(f"{url}?min_version=2", headers={"If-None-Match": etag})
    assert behind.status_code == 409

    send_raw((str(site), snapshot(site, 2, ["blog", "stores"])))
    project_all()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert [app["app_id"] for app in changed.json()["apps"]] == ["blog", "stores"]
    SiteAppsOut.model_validate(changed.json())
    operation = client.get("/api/openapi.json").json()["paths"][
        "/api/installed-apps/sites/{site_id}"
    ]["get"]
    assert ("header", "If-None-Match") in {(p["in"], p["name"]) for p in operation["parameters"]}
    assert "ETag" in operation["responses"]["304"]["headers"]
