"""``/api/kv``: served from memory, 404 for unknown namespaces and keys, in the docs."""

import pytest

from kvconfig.stores import get_store


def test_namespaces_entries_and_one_entry(kafka, client):
    get_store("supported-countries").put("SS", {"name": "South Sudan"}, editor="t")
    namespaces = {ns["name"]: ns for ns in client.get("/api/kv").json()}
    assert namespaces["supported-countries"]["entries"] == 1
    assert namespaces["supported-countries"]["ready"] is True
    assert namespaces["time-zones"]["topic"] == "kv.time-zones"

    listing = client.get("/api/kv/supported-countries")
    assert listing.json() == {
        "namespace": "supported-countries",
        "entries": {"SS": {"name": "South Sudan"}},
    }
    entry = client.get("/api/kv/supported-countries/SS")
    assert entry.json() == {
        "namespace": "supported-countries",
        "key": "SS",
        "value": {"name": "South Sudan"},
    }


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("/api/kv/nope", "unknown namespace 'nope' (known: "),
        ("/api/kv/nope/SS", "unknown namespace 'nope' (known: "),
        ("/api/kv/supported-countries/SS", "no key 'SS' in namespace 'supported-countries'"),
        ("/api/kv/supported-countries/usa", "no key 'usa' in namespace 'supported-countries'"),
    ],
)
def test_unknown_namespace_or_key_is_a_404_with_a_message(kafka, client, url, detail):
    response = client.get(url)
    assert response.status_code == 404
    assert response.json()["detail"].startswith(detail)


def test_a_store_that_cannot_catch_up_is_a_503(kafka_broker, client, settings):
    settings.KV_READY_TIMEOUT = 1
    response = client.get("/api/kv/supported-countries/SS")  # no topics under this prefix
    assert response.status_code == 503
    assert "does not exist" in response.json()["detail"]


def test_listed_in_the_openapi_docs(client):
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/kv", "/api/kv/{namespace}", "/api/kv/{namespace}/{key}"} <= set(paths)
