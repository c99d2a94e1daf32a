"""The MetaSite REST API and admin: every change bumps the version and queues its event."""

import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from eventplatform.kafka.envelope import Event
from eventplatform.models import OutboxEvent
from sites.events import SITE_DELETED, SITE_METADATA_CHANGED
from sites.models import Site

pytestmark = pytest.mark.django_db


def events() -> list[Event]:
    return [Event.decode(bytes(row.value)) for row in OutboxEvent.objects.order_by("id")]


def create(api, name="Shop") -> dict:
    response = api.post("/api/sites", {"name": name}, content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_install_update_uninstall_delete_each_publish_a_versioned_snapshot(api):
    site = create(api)
    site_id = site["id"]
    assert (site["version"], site["apps"]) == (1, [])

    response = api.put(
        f"/api/sites/{site_id}/apps/stores",
        {"settings": {"currency": "EUR"}},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert [a["app_id"] for a in response.json()["apps"]] == ["stores"]

    response = api.patch(
        f"/api/sites/{site_id}", {"name": "Shop 2"}, content_type="application/json"
    )
    assert (response.json()["name"], response.json()["version"]) == ("Shop 2", 3)
    assert api.delete(f"/api/sites/{site_id}/apps/stores").status_code == 204
    assert api.delete(f"/api/sites/{site_id}").status_code == 204
    assert api.get(f"/api/sites/{site_id}").status_code == 404

    published = events()
    assert [e.type for e in published] == [SITE_METADATA_CHANGED] * 4 + [SITE_DELETED]
    assert [e.data["version"] for e in published] == [1, 2, 3, 4, 5]
    assert {e.data["site_id"] for e in published} == {site_id}
    assert published[1].data["apps"][0]["app_id"] == "stores"
    assert published[1].data["apps"][0]["settings"] == {"currency": "EUR"}
    assert published[3].data["apps"] == []
    assert set(OutboxEvent.objects.values_list("key", flat=True)) == {site_id}


def test_installing_again_with_the_same_settings_changes_nothing(api):
    site_id = create(api)["id"]
    for _ in range(2):
        response = api.put(
            f"/api/sites/{site_id}/apps/blog", {"settings": {}}, content_type="application/json"
        )
    assert response.json()["version"] == 2
    assert len(events()) == 2


def test_settings_that_differ_only_in_json_type_are_a_change(api):
    site_id = create(api)["id"]
    for value in (1, True, 1.0):
        response = api.put(
            f"/api/sites/{site_id}/apps/blog",
            {"settings": {"on": value}},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
    published = [event.data["apps"][0]["settings"]["on"] for event in events()[1:]]
    assert [(type(value), value) for value in published] == [(int, 1), (bool, True), (float, 1.0)]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/sites", {"name": ""}, "name"),
        ("post", "/api/sites", {"name": "x" * 201}, "name"),
        ("patch", "/api/sites/{id}", {"owner": "nobody"}, "owner"),
        ("patch", "/api/sites/{id}", {"owner": None}, "owner"),
        ("put", "/api/sites/{id}/apps/Bad App", {}, "app_id"),
        ("put", "/api/sites/{id}/apps/blog", {"settings": [1, 2]}, "settings"),
        ("get", "/api/sites/not-a-uuid", None, "site_id"),
    ],
)
def test_invalid_input_is_422_naming_the_field(api, method, path, body, field):
    site_id = create(api)["id"]
    kwargs = {"content_type": "application/json"} if body is not None else {}
    args = (json.dumps(body),) if body is not None else ()
    response = getattr(api, method)(path.format(id=site_id), *args, **kwargs)
    assert response.status_code == 422, response.content
    assert field in {str(part) for error in response.json()["detail"] for part in error["loc"]}
    assert len(events()) == 1  # only the creation


def test_malformed_json_is_400(api):
    response = api.post("/api/sites", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert not Site.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/sites/{unknown}"),
        ("patch", "/api/sites/{unknown}"),
        ("delete", "/api/sites/{unknown}"),
        ("put", "/api/sites/{unknown}/apps/blog"),
        ("delete", "/api/sites/{unknown}/apps/blog"),
        ("delete", "/api/sites/{known}/apps/never-installed"),
    ],
)
def test_unknown_ids_are_404(api, method, path):
    known = create(api)["id"]
    url = path.format(unknown=uuid.uuid4(), known=known)
    kwargs = (
        {"data": "{}", "content_type": "application/json"} if method in ("patch", "put") else {}
    )
    response = getattr(api, method)(url, **kwargs)
    assert response.status_code == 404
    assert "detail" in response.json()


def test_writes_need_authentication(api):
    site_id = create(api)["id"]
    anonymous = Client()
    assert (
        anonymous.post("/api/sites", {"name": "n"}, content_type="application/json").status_code
        == 401
    )
    assert anonymous.delete(f"/api/sites/{site_id}").status_code == 401
    assert (
        anonymous.put(
            f"/api/sites/{site_id}/apps/blog", "{}", content_type="application/json"
        ).status_code
        == 401
    )
    bad_token = Client(headers={"Authorization": "Bearer nope"})
    assert (
        bad_token.patch(f"/api/sites/{site_id}", "{}", content_type="application/json").status_code
        == 401
    )
    assert anonymous.get(f"/api/sites/{site_id}").status_code == 401
    assert len(events()) == 1


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")


@pytest.fixture
def admin_client(root):
    client = Client()
    client.force_login(root)
    return client


def inline_management(total: int, initial: int) -> dict:
    return {
        "apps-TOTAL_FORMS": str(total),
        "apps-INITIAL_FORMS": str(initial),
        "apps-MIN_NUM_FORMS": "0",
        "apps-MAX_NUM_FORMS": "1000",
    }


def test_admin_add_change_and_delete_publish_events(admin_client, root):
    response = admin_client.post(
        "/admin/metasite/site/add/",
        {
            "name": "Admin site",
            "owner": str(root.pk),
            **inline_management(1, 0),
            "apps-0-app_id": "forms",
            "apps-0-settings": '{"captcha": true}',
        },
    )
    assert response.status_code == 302, response.content
    site = Site.objects.get()
    assert site.version == 2  # created, then the app installed
    assert list(site.apps.values_list("app_id", flat=True)) == ["forms"]

    installation = site.apps.get()
    response = admin_client.post(
        f"/admin/metasite/site/{site.pk}/change/",
        {
            "name": "Renamed",
            "owner": str(root.pk),
            **inline_management(2, 1),
            "apps-0-id": str(installation.pk),
            "apps-0-site": str(site.pk),
            "apps-0-app_id": "forms",
            "apps-0-settings": '{"captcha": true}',
            "apps-0-DELETE": "on",
            "apps-1-site": str(site.pk),
            "apps-1-app_id": "events",
            "apps-1-settings": "{}",
        },
    )
    assert response.status_code == 302, response.content
    site.refresh_from_db()
    assert (site.name, site.version) == ("Renamed", 5)
    assert list(site.apps.values_list("app_id", flat=True)) == ["events"]

    response = admin_client.post(f"/admin/metasite/site/{site.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Site.objects.exists()
    published = events()
    assert [e.data["version"] for e in published] == [1, 2, 3, 4, 5, 6]
    assert published[-1].type == SITE_DELETED
    assert [a["app_id"] for a in published[-2].data["apps"]] == ["events"]


def test_admin_bulk_delete_publishes_one_deletion_per_site(admin_client, api):
    ids = [create(api, name=f"s{i}")["id"] for i in range(3)]
    response = admin_client.post(
        "/admin/metasite/site/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not Site.objects.exists()
    deletions = [e for e in events() if e.type == SITE_DELETED]
    assert sorted(e.data["site_id"] for e in deletions) == sorted(ids)
    assert {e.data["version"] for e in deletions} == {2}


def test_publish_sites_all_backfills_every_site_in_chunks(api):
    from django.core.management import call_command

    ids = {create(api, name=f"s{i}")["id"] for i in range(7)}
    OutboxEvent.objects.all().delete()
    call_command("publish_sites", "--all", "--chunk-size", "3")
    published = events()
    assert {e.data["site_id"] for e in published} == ids
    assert len(published) == 7
    assert {e.data["version"] for e in published} == {1}


def test_a_change_whose_event_would_not_fit_in_kafka_is_refused_with_the_limit(api, settings):
    # Raised past the event limit, so that the outbox's own bound is the one that refuses.
    settings.SITES_MAX_APP_SETTINGS_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2
    site = create(api)
    huge = {"blob": "z" * (1100 * 1024)}
    response = api.put(
        f"/api/sites/{site['id']}/apps/stores", {"settings": huge}, content_type="application/json"
    )
    assert response.status_code == 413
    body = response.json()
    assert body["limit_bytes"] == 900 * 1024
    assert "limit is 921,600 bytes" in body["detail"]
    # Nothing was stored: the site is unchanged and only its creation was published.
    assert api.get(f"/api/sites/{site['id']}").json()["apps"] == []
    assert [e.type for e in events()] == [SITE_METADATA_CHANGED]
