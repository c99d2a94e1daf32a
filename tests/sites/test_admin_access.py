"""The sites admin asks the same rules as the API: a staff user without the model
permissions sees, changes and deletes only the sites they own, and owns what they add."""

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
