"""The KV editor in the Django admin: access, list, add/edit/delete, errors, history."""

import time

import pytest
from django.contrib.auth.models import Permission

from kvconfig.stores import get_store

from ..helpers import wait_until
from .conftest import topic_records

pytestmark = pytest.mark.django_db


def test_pages_need_a_logged_in_staff_user(kafka, client, django_user_model):
    for url in ["/admin/kv/", "/admin/kv/supported-countries/", "/admin/kv/time-zones/add/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    user = django_user_model.objects.create_user("plain", password="pw", is_staff=False)
    client.force_login(user)
    response = client.get("/admin/kv/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post("/admin/kv/supported-countries/add/", {"key": "SS", "name": "x"})
    assert response.status_code == 302
    assert topic_records("supported-countries") == []


def _staff_with(client, django_user_model, *codenames: str):
    user = django_user_model.objects.create_user("kv-staff", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def test_staff_without_the_configurations_permissions_is_refused_by_name(
    kafka, client, django_user_model
):
    staff = _staff_with(client, django_user_model)
    for url in ["/admin/kv/", "/admin/kv/supported-countries/", "/admin/kv/time-zones/add/"]:
        response = staff.get(url)
        assert response.status_code == 403
        assert "kvconfig.view_configuration" in response.content.decode() or (
            "kvconfig.change_configuration" in response.content.decode()
        )
    response = staff.post("/admin/kv/supported-countries/add/", {"key": "SS", "name": "x"})
    assert response.status_code == 403
    assert 'id="kv-namespaces-section"' not in staff.get("/admin/").content.decode()
    assert topic_records("supported-countries") == []


def test_a_reader_of_the_configuration_sees_it_but_cannot_change_it(
    kafka, client, django_user_model
):
    get_store("supported-countries").put("US", {"name": "United States"}, editor="t")
    reader = _staff_with(client, django_user_model, "view_configuration")
    entries = reader.get("/admin/kv/supported-countries/").content.decode()
    assert "United States" in entries
    assert "/admin/kv/supported-countries/add/" not in entries
    assert "/admin/kv/supported-countries/US/delete/" not in entries
    assert reader.get("/admin/kv/supported-countries/US/history/").status_code == 200
    for url in ["/admin/kv/supported-countries/US/", "/admin/kv/supported-countries/US/delete/"]:
        response = reader.post(url, {"key": "US", "name": "Changed"})
        assert response.status_code == 403
        assert "kvconfig.change_configuration" in response.content.decode()
    assert get_store("supported-countries").get("US") == {"name": "United States"}


def test_an_editor_of_the_configuration_can_add_to_it(kafka, client, django_user_model):
    editor = _staff_with(client, django_user_model, "view_configuration", "change_configuration")
    response = editor.post("/admin/kv/supported-countries/add/", {"key": "SS", "name": "South"})
    assert response.status_code == 302
    assert topic_records("supported-countries") == [("SS", {"name": "South"})]


def test_index_lists_namespaces_with_counts_and_readiness(kafka, staff_client):
    get_store("supported-countries").put("US", {"name": "United States"}, editor="t")
    page = staff_client.get("/admin/kv/").content.decode()
    assert "supported-countries" in page and "time-zones" in page
    assert '<td class="kv-count">1</td>' in page
    assert page.count('<td class="kv-ready">yes</td>') >= 2
    admin_index = staff_client.get("/admin/").content.decode()
    assert 'href="/admin/kv/"' in admin_index
    assert 'class="app-kvconfig module current-app"' in page  # its sidebar section


def _sidebar(page: str) -> str:
    start = page.index('id="nav-sidebar"')
    return page[start : page.index("</nav>", start)]


def test_the_admin_index_and_sidebar_show_the_kv_namespaces_to_staff(staff_client):
    index = staff_client.get("/admin/").content.decode()
    assert '<a href="/admin/kv/" class="section"' in index and ">KV configuration</a>" in index
    assert '<a href="/admin/kv/supported-countries/">supported-countries</a>' in index
    assert '<a href="/admin/kv/time-zones/">time-zones</a>' in index
    sidebar = _sidebar(staff_client.get("/admin/auth/user/").content.decode())
    assert ">KV configuration</a>" in sidebar
    assert '<a href="/admin/kv/supported-countries/">supported-countries</a>' in sidebar
    assert 'href="/admin/kv/supported-countries/add/"' in sidebar
    assert '<a href="/admin/kv/time-zones/">time-zones</a>' in sidebar
    assert 'href="/admin/kv/time-zones/add/"' not in sidebar  # derived: no hand edits


def test_add_edit_search_and_delete(kafka, staff_client):
    response = staff_client.post(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "South Sudan"}, follow=True
    )
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/admin/kv/supported-countries/"
    assert "Saved SS in supported-countries." in page
    assert "South Sudan" in page  # the new value shows at once
    staff_client.post("/admin/kv/supported-countries/add/", {"key": "FR", "name": "France"})

    edit = staff_client.get("/admin/kv/supported-countries/SS/").content.decode()
    assert 'value="South Sudan"' in edit
    response = staff_client.post(
        "/admin/kv/supported-countries/SS/",
        {"key": "XX", "name": "Republic of South Sudan"},  # the key is fixed by the URL
        follow=True,
    )
    assert "Republic of South Sudan" in response.content.decode()
    assert get_store("supported-countries")["SS"] == {"name": "Republic of South Sudan"}

    found = staff_client.get("/admin/kv/supported-countries/?q=republic").content.decode()
    assert 'id="kv-SS"' in found and 'id="kv-FR"' not in found

    confirm = staff_client.get("/admin/kv/supported-countries/SS/delete/").content.decode()
    assert "Yes, delete SS" in confirm
    assert "SS" in get_store("supported-countries")  # a GET deletes nothing
    response = staff_client.post("/admin/kv/supported-countries/SS/delete/", follow=True)
    assert "Deleted SS from supported-countries." in response.content.decode()
    assert "SS" not in get_store("supported-countries")
    assert topic_records("supported-countries")[-1] == ("SS", None)
    assert staff_client.get("/admin/kv/supported-countries/SS/").status_code == 404


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"key": "usa", "name": "x"}, "key", "key &#x27;usa&#x27; is not an ISO 3166 alpha-2"),
        ({"key": "U1", "name": "x"}, "key", "key &#x27;U1&#x27; is not an ISO 3166 alpha-2"),
        ({"key": "", "name": "x"}, "key", "key is required"),
        ({"key": "SS", "name": ""}, "name", "This field is required."),
        ({"key": "SS", "name": "x" * 300}, "name", "must be at most 100 characters"),
    ],
)
def test_country_form_errors_show_next_to_the_field(kafka, staff_client, data, field, message):
    response = staff_client.post("/admin/kv/supported-countries/add/", data)
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors
    page = response.content.decode()
    row = page[page.index(f"field-{field}") :]
    assert message in row[: row.index("</div>")]
    assert topic_records("supported-countries") == []


def test_the_derived_store_is_not_editable_and_says_where_its_values_come_from(kafka, staff_client):
    derived = {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}
    get_store("time-zones").put("SS", derived, editor="derive_time_zones")
    listing = staff_client.get("/admin/kv/time-zones/").content.decode()
    assert "Derived, not editable here" in listing and "derive_time_zones" in listing
    assert "/admin/kv/time-zones/add/" not in listing
    assert "/admin/kv/time-zones/SS/delete/" not in listing
    for url, data in [
        ("/admin/kv/time-zones/add/", {"key": "FR", "zones": "Europe/Paris", "primary": "x"}),
        ("/admin/kv/time-zones/SS/", {"zones": "Europe/Paris", "primary": "Europe/Paris"}),
        ("/admin/kv/time-zones/SS/delete/", {}),
    ]:
        response = staff_client.post(url, data)
        assert response.status_code == 403
        assert "values come\n    from derive_time_zones, from supported-countries" in (
            response.content.decode()
        )
    assert topic_records("time-zones") == [("SS", derived)]


def test_add_refuses_an_existing_key(kafka, staff_client):
    get_store("supported-countries").put("SS", {"name": "South Sudan"}, editor="alice")
    response = staff_client.post(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "Sudan"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {
        "key": ["SS already exists in supported-countries, edit it instead"]
    }
    assert get_store("supported-countries")["SS"] == {"name": "South Sudan"}


def test_unknown_namespace_or_key_is_404(kafka, staff_client):
    assert staff_client.get("/admin/kv/nope/").status_code == 404
    assert staff_client.get("/admin/kv/supported-countries/SS/").status_code == 404
    assert staff_client.post("/admin/kv/supported-countries/SS/delete/").status_code == 404


def test_history_shows_values_editors_and_deletes(kafka, staff_client, django_user_model):
    store = get_store("supported-countries")
    store.put("SS", {"name": "South Sudan"}, editor="alice")
    store.put("FR", {"name": "France"}, editor="alice")
    staff_client.post("/admin/kv/supported-countries/SS/", {"name": "Republic of South Sudan"})
    staff_client.post("/admin/kv/supported-countries/SS/delete/")
    page = staff_client.get("/admin/kv/supported-countries/SS/history/").content.decode()
    rows = page[page.index("<tbody>") : page.index("</tbody>")].split("<tr>")[1:]
    assert len(rows) == 3  # FR's record is not SS's history
    assert "<em>deleted</em>" in rows[0] and "editor" in rows[0]
    assert "Republic of South Sudan" in rows[1] and "editor" in rows[1]
    assert "South Sudan" in rows[2] and "alice" in rows[2]


def test_a_write_this_server_applies_late_is_reported_saved_not_failed(
    kafka, staff_client, settings, monkeypatch
):
    store = get_store("supported-countries").wait_ready()
    settings.KV_WRITE_TIMEOUT = 1
    apply = store._apply

    def apply_late(partition, records):
        time.sleep(2)  # this process's reader falls behind the write it waits for
        apply(partition, records)

    monkeypatch.setattr(store, "_apply", apply_late)
    response = staff_client.post(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "South"}, follow=True
    )
    page = response.content.decode()
    assert "Saved SS in supported-countries. This server had not caught up with it yet" in page
    assert "Not saved" not in page
    assert topic_records("supported-countries") == [("SS", {"name": "South"})]


def test_a_write_the_broker_acknowledges_too_late_is_reported_unconfirmed_and_still_lands(
    kafka, staff_client, settings
):
    store = get_store("supported-countries").wait_ready()
    # Shorter than any acknowledgement: the producer still holds the record, and sends it.
    settings.KV_WRITE_TIMEOUT = 0.0001
    response = staff_client.post(
        "/admin/kv/supported-countries/add/", {"key": "SS", "name": "South"}
    )
    assert response.status_code == 200  # the form again, with the error: not a 503
    page = response.content.decode()
    assert "Not confirmed: the broker did not acknowledge the write within 0.0001 s" in page
    assert "check before writing it again" in page
    assert "Not saved" not in page
    wait_until(lambda: "SS" in store, message="the unconfirmed write never landed")
    assert topic_records("supported-countries") == [("SS", {"name": "South"})]


def test_a_namespace_whose_store_cannot_catch_up_is_a_prompt_503_page_saying_why(
    kafka_broker, staff_client, settings
):
    settings.KV_PAGE_READY_TIMEOUT = 2  # no topics exist under this test's prefix
    started = time.monotonic()
    response = staff_client.get("/admin/kv/supported-countries/")
    assert time.monotonic() - started < 10
    assert (response.status_code, response["Retry-After"]) == (503, "5")
    page = " ".join(response.content.decode().split())
    assert "cannot show the supported-countries configuration yet" in page
    assert "does not exist (run manage.py create_topics)" in page

    index = staff_client.get("/admin/kv/")
    assert index.status_code == 200
    assert "does not exist (run manage.py create_topics)" in index.content.decode()
