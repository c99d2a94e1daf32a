"""The read API's site route is matched first, with the view and arguments it has where
the API mounts it, and ``reverse`` still names it there."""

import uuid

import pytest
from django.urls import URLResolver, resolve, reverse

from eventplatform.hoisting import hoist
from eventplatform.urls import api_urls, urlpatterns


def test_the_site_route_is_the_first_pattern_with_the_apis_own_view():
    site_id = str(uuid.uuid4())
    url = reverse("api:site_apps", kwargs={"site_id": site_id})
    assert url == f"/api/installed-apps/sites/{site_id}"

    match = resolve(url)
    assert (match.func, match.kwargs) == (urlpatterns[0].callback, {"site_id": site_id})
    nested = api_urls.resolve(url.removeprefix("/"))
    assert (nested.func, nested.url_name) == (match.func, "site_apps")


def test_a_name_no_route_has_is_refused_by_name():
    assert isinstance(api_urls, URLResolver)
    with pytest.raises(LookupError, match="no-such-route"):
        hoist(api_urls, "no-such-route")
