"""KV fixtures: a bulk namespace for big tests, fresh stores per test, a staff client."""

import json

import pytest

from eventplatform.kafka.config import topic_name
from kvconfig import stores as kv_stores
from kvconfig.namespaces import register
from kvconfig.schema import KeyPattern, Namespace, Text
from tests.helpers import read_topic

BULK = register(
    Namespace(
        name="test-bulk",
        description="Many keys over three partitions, for bootstrap tests.",
        key_rule=KeyPattern(r"k\d+", "'k' followed by digits"),
        fields=(Text("name"),),
        partitions=3,
    )
)


COMPACTED = register(
    Namespace(
        name="test-compacted",
        description="A namespace whose log cleaner runs within seconds.",
        key_rule=KeyPattern(r"k\d+", "'k' followed by digits"),
        fields=(Text("name"),),
        topic_config=(
            ("segment.ms", "200"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "200"),
            ("min.compaction.lag.ms", "0"),
        ),
    )
)


@pytest.fixture(autouse=True)
def fresh_stores():
    """Each test starts with no store and no reader (each test has its own topics)."""
    kv_stores.shutdown()
    yield
    kv_stores.shutdown()


@pytest.fixture
def client(db, client, django_user_model):
    """Every /api/ path needs a user: the API is read with a logged-in session."""
    client.force_login(django_user_model.objects.create_user("kv-reader"))
    return client


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


def topic_records(namespace: str) -> list[tuple[str, dict | None]]:
    """Every (key, value) on a namespace's topic, read with a plain consumer."""
    return [
        (r.key.decode(), None if r.value is None else json.loads(r.value))
        for r in read_topic(topic_name(f"kv.{namespace}"))
    ]
