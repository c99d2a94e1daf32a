"""The sites admin asks the same rules as the API: a staff user without the model
permissions sees, changes and deletes only the sites they own, and owns what they add."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from sites import services
from sites.models import Site

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def olive() -> User:
    return User.objects.create_user("olive", is_staff=True)


@pytest.fixture
def as_olive(olive) -> Client:
    client = Client()
    client.force_login(olive)
    return client


@pytest.fixture
def sites(olive) -> tuple[Site, Site]:
    other = User.objects.create_user("other")
    return (
        services.create_site(name="Olive's", owner=olive),
        services.create_site(name="Other's", owner=other),
    )


def test_the_list_shows_only_the_sites_one_owns(as_olive, sites):
    page = as_olive.get("/admin/metasite/site/").content.decode()
    assert "Olive&#x27;s" in page and "Other&#x27;s" not in page


def test_an_owner_changes_their_site_and_not_another(as_olive, sites):
    own, other = sites
    response = as_olive.post(
        f"/admin/metasite/site/{own.pk}/change/",
        {"name": "Renamed", **_no_inlines()},
    )
    assert response.status_code == 302, response.content
    own.refresh_from_db()
    assert (own.name, own.version) == ("Renamed", 2)

    response = as_olive.post(
        f"/admin/metasite/site/{other.pk}/change/", {"name": "Taken", **_no_inlines()}
    )
    assert response.status_code in (302, 403)
    other.refresh_from_db()
    assert (other.name, other.version) == ("Other's", 1)


def test_an_owner_deletes_their_site_and_not_another(as_olive, sites):
    own, other = sites
    refused = as_olive.post(f"/admin/metasite/site/{other.pk}/delete/", {"post": "yes"})
    assert refused.status_code in (302, 403)
    assert Site.objects.filter(pk=other.pk).exists()
    deleted = as_olive.post(f"/admin/metasite/site/{own.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not Site.objects.filter(pk=own.pk).exists()


def test_a_site_added_without_the_permission_is_owned_by_its_author(as_olive, olive):
    response = as_olive.post("/admin/metasite/site/add/", {"name": "Mine", **_no_inlines()})
    assert response.status_code == 302, response.content
    assert Site.objects.get(name="Mine").owner == olive


def _no_inlines() -> dict:
    return {
        "apps-TOTAL_FORMS": "0",
        "apps-INITIAL_FORMS": "0",
        "apps-MIN_NUM_FORMS": "0",
        "apps-MAX_NUM_FORMS": "1000",
    }


def _inlines(*installs: tuple[str, str], existing: list | None = None) -> dict:
    """The inline formset's fields: ``existing`` installations unchanged, then new ones."""
    existing = existing or []
    data = {
        "apps-TOTAL_FORMS": str(len(existing) + len(installs)),
        "apps-INITIAL_FORMS": str(len(existing)),
        "apps-MIN_NUM_FORMS": "0",
        "apps-MAX_NUM_FORMS": "1000",
    }
    for n, install in enumerate(existing):
        data |= {
            f"apps-{n}-id": str(install.pk),
            f"apps-{n}-site": str(install.site_id),
            f"apps-{n}-app_id": install.app_id,
            f"apps-{n}-settings": json.dumps(install.settings),
        }
    for n, (app_id, settings) in enumerate(installs, start=len(existing)):
        data |= {f"apps-{n}-app_id": app_id, f"apps-{n}-settings": settings}
    return data


@pytest.fixture
def as_admin() -> Client:
    """A superuser: the app inlines are shown to holders of their model permissions."""
    client = Client()
    client.force_login(User.objects.create_superuser("root"))
    return client


def test_settings_the_api_would_refuse_are_a_form_error(as_admin, sites):
    own, _ = sites
    for settings, reason in [
        ('{"ratio": NaN}', "NaN and Infinity are not JSON numbers"),
        ("[1]", "must be a JSON object"),
        ('{"label": "\\u0000"}', "NUL character"),
    ]:
        response = as_admin.post(
            f"/admin/metasite/site/{own.pk}/change/",
            {"name": own.name, "owner": own.owner_id, **_inlines(("shop", settings))},
        )
        assert response.status_code == 200, settings
        assert reason in response.content.decode(), settings
    own.refresh_from_db()
    assert (own.version, own.apps.count()) == (1, 0)


def test_an_install_past_the_limit_of_apps_is_refused_with_the_reason(
    as_admin, sites, olive, settings
):
    settings.SITES_MAX_APPS_PER_SITE = 1
    own, _ = sites
    services.install_app(site_id=own.pk, app_id="blog", settings={}, actor=olive)
    response = as_admin.post(
        f"/admin/metasite/site/{own.pk}/change/",
        {
            "name": "Renamed",
            "owner": own.owner_id,
            **_inlines(("shop", "{}"), existing=list(own.apps.all())),
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "Not saved: site" in response.content.decode()
    assert "already has the maximum of 1 apps" in response.content.decode()
    own.refresh_from_db()
    assert (own.name, own.version) == ("Olive's", 2)
    assert list(own.apps.values_list("app_id", flat=True)) == ["blog"]
