"""Who may do what through the API: every write endpoint against every kind of caller,
anonymous reads of every path, read-only tokens, and the stated bounds, each answered with
its documented status as JSON, no 500 and no ERROR log line."""

import json
import logging
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from eventplatform.models import OutboxEvent
from eventplatform.notifications.tokens import issue_channel
from sites.models import AppInstallation, Site

from .conftest import token_client

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture(autouse=True)
def no_error_logged(caplog):
    """Every refusal here is an answer, not an incident: nothing may log ERROR."""
    caplog.set_level(logging.INFO)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
def owner(db):
    return User.objects.create_user("olive", password="olive-pass-1")


@pytest.fixture
def site(owner) -> Site:
    response = token_client(owner).post(
        "/api/sites", {"name": "Olive's shop"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    site = Site.objects.get(pk=response.json()["id"])
    token_client(owner).put(
        f"/api/sites/{site.pk}/apps/blog",
        {"settings": {"api_key": "secret"}},
        content_type="application/json",
    )
    return site


def staff_with_permissions() -> User:
    staff = User.objects.create_user("stan", is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="metasite", codename__in=["change_site", "delete_site"]
        )
    )
    return staff


CALLERS = ["anonymous", "wrong token", "other user", "owner", "staff with permission"]


def caller(kind: str, owner) -> Client:
    if kind == "anonymous":
        return Client()
    if kind == "wrong token":
        return Client(headers={"Authorization": "Bearer not-a-token"})
    if kind == "other user":
        return token_client(User.objects.create_user("mallory"))
    if kind == "owner":
        return token_client(owner)
    return token_client(staff_with_permissions())


# (name, method, path, body, status for anonymous/wrong, other user, owner, staff)
SITE_WRITES = [
    ("rename", "patch", "/api/sites/{site}", {"name": "Taken"}, 401, 403, 200, 200),
    ("re-own", "patch", "/api/sites/{site}", {"owner": "rhea"}, 401, 403, 200, 200),
    ("delete", "delete", "/api/sites/{site}", None, 401, 403, 204, 204),
    ("install", "put", "/api/sites/{site}/apps/shop", {"settings": {}}, 401, 403, 200, 200),
    ("reconfigure", "put", "/api/sites/{site}/apps/blog", {"settings": {}}, 401, 403, 200, 200),
    ("uninstall", "delete", "/api/sites/{site}/apps/blog", None, 401, 403, 204, 204),
]


def state(site_id) -> tuple:
    """Everything a refused write must leave as it was: the site, its apps, its events."""
    site = Site.objects.filter(pk=site_id).first()
    row = site and (site.name, site.owner_id, site.version)
    apps = sorted(AppInstallation.objects.filter(site_id=site_id).values_list("app_id", "settings"))
    return row, apps, OutboxEvent.objects.count()


def send(client: Client, method: str, url: str, body) -> object:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("kind", CALLERS)
@pytest.mark.parametrize(
    ("name", "method", "path", "body", "unauthenticated", "other", "owner_status", "staff"),
    SITE_WRITES,
    ids=[write[0] for write in SITE_WRITES],
)
def test_site_write_matrix(
    site, owner, kind, name, method, path, body, unauthenticated, other, owner_status, staff
):
    User.objects.create_user("rhea")  # the new owner of "re-own"
    expected = {
        "anonymous": unauthenticated,
        "wrong token": unauthenticated,
        "other user": other,
        "owner": owner_status,
        "staff with permission": staff,
    }[kind]
    client = caller(kind, owner)
    before = state(site.pk)
    response = send(client, method, path.format(site=site.pk), body)
    assert response.status_code == expected, response.content
    if expected >= 400:
        assert response["Content-Type"].startswith("application/json")
        assert "detail" in response.json()
        assert state(site.pk) == before
    if expected == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if expected < 300:
        assert state(site.pk) != before


@pytest.mark.parametrize("kind", CALLERS)
def test_create_is_open_to_every_authenticated_user_who_then_owns_the_site(owner, kind):
    client = caller(kind, owner)
    response = client.post("/api/sites", {"name": "New"}, content_type="application/json")
    if kind in ("anonymous", "wrong token"):
        assert response.status_code == 401
        assert not Site.objects.exists() and not OutboxEvent.objects.exists()
        return
    assert response.status_code == 201, response.content
    created = Site.objects.get(pk=response.json()["id"])
    assert created.owner.username == response.json()["owner"]


def test_naming_another_owner_at_creation_needs_change_site(owner):
    mallory = token_client(User.objects.create_user("mallory"))
    response = mallory.post(
        "/api/sites", {"name": "Gift", "owner": "olive"}, content_type="application/json"
    )
    assert response.status_code == 403
    assert not Site.objects.exists()
    staff = token_client(staff_with_permissions())
    response = staff.post(
        "/api/sites", {"name": "Gift", "owner": "olive"}, content_type="application/json"
    )
    assert (response.status_code, response.json()["owner"]) == (201, "olive")


@pytest.mark.parametrize("named", ["olive", "no-such-user"])
def test_a_caller_who_may_not_name_an_owner_cannot_tell_which_usernames_exist(site, named):
    """Creating a site for someone else, or re-owning a site one may not change, gets the
    same 403 whether or not the name is a user's: never the 422 of an unknown name."""
    mallory = token_client(User.objects.create_user("mallory"))
    created = mallory.post(
        "/api/sites", {"name": "Gift", "owner": named}, content_type="application/json"
    )
    reowned = mallory.patch(
        f"/api/sites/{site.id}", {"owner": named}, content_type="application/json"
    )
    assert (created.status_code, reowned.status_code) == (403, 403)
    assert Site.objects.get().owner.username == "olive"


def test_a_caller_who_may_name_an_owner_is_told_the_name_is_nobodys(site):
    staff = token_client(staff_with_permissions())
    response = staff.post(
        "/api/sites", {"name": "Gift", "owner": "no-such-user"}, content_type="application/json"
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "owner"
    assert Site.objects.count() == 1


@pytest.mark.parametrize("kind", CALLERS)
def test_contacts_write_matrix(owner, kind, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    client = caller(kind, owner)
    response = client.post("/api/contacts/channels")
    assert response.status_code == (401 if kind in ("anonymous", "wrong token") else 201)
    # The owner's channel: "other user" may not send an import's progress to it.
    channel = issue_channel(user_id=owner.pk)
    if kind in ("owner", "staff with permission"):
        channel = response.json()["channel"]
    upload = client.post(
        "/api/contacts/imports",
        {"file": _csv(tmp_path), "channel": channel},
    )
    expected = {"anonymous": 401, "wrong token": 401, "other user": 403}.get(kind, 202)
    assert upload.status_code == expected, upload.content
    assert upload["Content-Type"].startswith("application/json")


def _csv(tmp_path):
    path = tmp_path / "contacts.csv"
    path.write_text("email,name\nada@example.com,Ada\n")
    return path.open("rb")


def test_app_settings_are_shown_only_to_the_owner_and_staff(site, owner):
    url = f"/api/sites/{site.pk}"
    mallory = token_client(User.objects.create_user("mallory"))
    assert [(a["app_id"], a["settings"]) for a in mallory.get(url).json()["apps"]] == [
        ("blog", None)
    ]
    assert token_client(owner).get(url).json()["apps"][0]["settings"] == {"api_key": "secret"}
    staff = token_client(User.objects.create_user("sam", is_staff=True))
    assert staff.get(url).json()["apps"][0]["settings"] == {"api_key": "secret"}


def every_api_operation(client: Client) -> list[tuple[str, str]]:
    """(method, concrete url) for every operation in the OpenAPI document."""
    values = {
        "site_id": str(uuid.uuid4()),
        "app_id": "blog",
        "namespace": "supported-countries",
        "key": "SS",
        "job_id": str(uuid.uuid4()),
    }
    paths = client.get("/api/openapi.json").json()["paths"]
    operations = []
    for template, methods in paths.items():
        url = template
        for name, value in values.items():
            url = url.replace("{" + name + "}", value)
        assert "{" not in url, f"no example value for {template}"
        operations += [(method, url) for method in methods]
    return operations


def test_anonymous_calls_of_every_api_path_are_401_json():
    anonymous = Client()
    operations = every_api_operation(anonymous)
    assert ("get", "/api/me") in operations and len(operations) >= 14
    for method, url in operations:
        response = getattr(anonymous, method)(url)
        assert response.status_code == 401, (method, url, response.content)
        assert response["Content-Type"].startswith("application/json")
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["detail"]
    assert anonymous.get("/api/docs").status_code == 200
    assert anonymous.get("/healthz").status_code == 200


def test_a_read_only_token_reads_and_is_refused_every_write(site, owner):
    reader = token_client(owner, read_only=True)
    assert reader.get(f"/api/sites/{site.pk}").status_code == 200
    assert reader.get("/api/me").json() == {"username": "olive", "read_only": True}
    assert reader.get("/api/contacts").status_code == 200
    before = state(site.pk)
    writes = [(m, p.format(site=site.pk), b) for _, m, p, b, *_ in SITE_WRITES]
    writes += [("post", "/api/sites", {"name": "n"}), ("post", "/api/contacts/channels", None)]
    writes += [("post", "/api/contacts/imports", None)]
    for method, url, body in writes:
        response = send(reader, method, url, body)
        assert response.status_code == 403, (method, url, response.content)
        assert response.json() == {"detail": "this token is read-only: it may not write"}
    assert state(site.pk) == before
    assert Site.objects.count() == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("NaN", "NaN and Infinity"),
        ("Infinity", "NaN and Infinity"),
        ("-Infinity", "NaN and Infinity"),
        ('"\\ud800"', "unpaired surrogates"),
        ('"a\\udfffb"', "unpaired surrogates"),
    ],
)
def test_app_settings_json_can_spell_but_not_carry_are_422(site, owner, value, reason):
    api, before = token_client(owner), state(site.pk)
    response = api.put(
        f"/api/sites/{site.pk}/apps/shop",
        '{"settings": {"field": ' + value + "}}",
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert reason in response.json()["detail"][0]["msg"]
    assert state(site.pk) == before


def test_a_3_mb_body_is_413_json_with_the_limit(site, owner, settings):
    body = json.dumps({"settings": {"blob": "x" * (3 * 1024 * 1024)}})
    response = token_client(owner).put(
        f"/api/sites/{site.pk}/apps/shop", body, content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    assert "limit of 1,048,576 bytes" in response.json()["detail"]


def test_settings_over_the_per_app_limit_are_413_with_the_limit(site, owner):
    before = state(site.pk)
    response = token_client(owner).put(
        f"/api/sites/{site.pk}/apps/shop",
        {"settings": {"blob": "x" * 17_000}},
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 16 * 1024
    assert "the limit is 16,384 bytes" in response.json()["detail"]
    assert state(site.pk) == before


def test_a_100_kb_query_string_is_414_json_with_the_limit(site, owner):
    response = token_client(owner).get(f"/api/sites/{site.pk}?q=" + "x" * 100_000)
    assert response.status_code == 414
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["limit_bytes"] == 8 * 1024


def test_the_10001st_app_is_refused_with_the_limit(site, owner):
    now = timezone.now()
    AppInstallation.objects.bulk_create(
        AppInstallation(site=site, app_id=f"app-{n:05}", installed_at=now) for n in range(9_999)
    )
    assert site.apps.count() == 10_000
    before = state(site.pk)
    response = token_client(owner).put(
        f"/api/sites/{site.pk}/apps/one-more", {"settings": {}}, content_type="application/json"
    )
    assert response.status_code == 409, response.content
    assert response.json()["limit"] == 10_000
    assert "maximum of 10,000 apps" in response.json()["detail"]
    assert state(site.pk) == before


@pytest.mark.parametrize("body", ["null", "[]", '"name"'])
def test_a_body_that_is_not_a_json_object_is_400(site, owner, body):
    before = state(site.pk)
    response = token_client(owner).patch(
        f"/api/sites/{site.pk}", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert response.json() == {"detail": "Cannot parse request body"}
    assert state(site.pk) == before


def test_a_logged_in_session_writes_with_its_csrf_token_only(site, owner):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    url = f"/api/sites/{site.pk}"
    response = browser.patch(url, {"name": "x"}, content_type="application/json")
    assert (response.status_code, response.json()) == (403, {"detail": "CSRF check Failed"})
    browser.get("/accounts/login/")
    token = browser.cookies["csrftoken"].value
    response = browser.patch(
        url, {"name": "Renamed"}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert (response.status_code, response.json()["name"]) == (200, "Renamed")
