"""Event contracts: what producers write and what consumers accept both match the JSON Schema
files, and a client that shares no code with the platform reads every topic."""

import json
import shutil
import subprocess
import uuid
from types import SimpleNamespace

import jsonschema
import pytest
from django.contrib.auth import get_user_model

from contacts.events import ImportBatch
from contacts.importer import ContactImporter
from eventplatform.kafka.config import topic_name
from eventplatform.kafka.contracts import ENVELOPE_SCHEMA, load_schema, schema_files, schema_for
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.producer import send, wait_all
from eventplatform.kafka.topics import declared_topics
from eventplatform.notifications.relay import NotificationRelay
from eventplatform.notifications.services import notify
from eventplatform.outbox import OutboxRelay
from kvconfig.stores import get_store
from sites import services
from sites.events import parse_site_change
from tests.helpers import read_topic

ENVELOPE = load_schema(ENVELOPE_SCHEMA)
EVENT_TOPICS = ["sites.metadata", "contacts.import-jobs", "notifications"]


def assert_matches_contract(raw: bytes) -> dict:
    """Validate one record value against the envelope and its type's schema file."""
    body = json.loads(raw)
    jsonschema.validate(body, ENVELOPE, format_checker=jsonschema.FormatChecker())
    schema = schema_for(body["type"], body["version"])
    jsonschema.validate(body, schema, format_checker=jsonschema.FormatChecker())
    return body


def test_every_event_type_has_a_schema_file_with_an_example_its_consumer_accepts():
    consumers = {
        "SiteMetadataChanged": parse_site_change,
        "SiteDeleted": parse_site_change,
        "contacts.import-batch": lambda raw: ContactImporter().decode(SimpleNamespace(value=raw)),
        "notification": lambda raw: NotificationRelay().decode(SimpleNamespace(value=raw)),
    }
    files = schema_files()
    assert {event_type for event_type, _ in files} == set(consumers)
    for (event_type, _version), path in files.items():
        schema = load_schema(path)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["examples"], f"{path} has no example"
        for example in schema["examples"]:
            assert_matches_contract(json.dumps(example).encode())
            consumers[event_type](json.dumps(example).encode())
            # Readers ignore what they do not know: a later version may add fields.
            example = {**example, "version": 2, "data": {**example["data"], "added": 1}}
            consumers[event_type](json.dumps(example).encode())


@pytest.mark.django_db(transaction=True)
def test_an_independent_client_reads_every_topic_and_each_event_matches_its_contract(
    kafka, kafka_broker
):
    alice = get_user_model().objects.create_user("alice", password="pw-123456")
    site = services.create_site(name="Shop", owner=alice)
    services.install_app(site_id=site.id, app_id="stores", settings={"currency": "EUR"})
    services.delete_site(site_id=site.id)
    batch = ImportBatch(
        job_id=uuid.uuid4(), batch_no=0, rows=[[2, "a@example.com", "A", "", ""]], errors=[]
    )
    wait_all(
        [
            send(
                topic_name("contacts.import-jobs"), key=batch.key, value=batch.to_event().encode()
            ),
            notify("channel-1", {"type": "planned", "total_rows": 1}),
        ]
    )
    relay = OutboxRelay()
    while relay.relay_once():
        pass
    get_store("supported-countries").put("SS", {"name": "South Sudan"}, editor="test")

    values = {}
    for spec in declared_topics():
        values[spec.name] = _independent_read(topic_name(spec.name), kafka_broker)
    for name in EVENT_TOPICS:
        assert values[name], f"nothing read from {name}"
        for raw in values[name]:
            assert_matches_contract(raw)
    assert [Event.decode(v).type for v in values["sites.metadata"]] == [
        "SiteMetadataChanged",
        "SiteMetadataChanged",
        "SiteDeleted",
    ]
    assert json.loads(values["kv.supported-countries"][-1]) == {"name": "South Sudan"}


def _independent_read(topic: str, broker) -> list[bytes]:
    """The topic's values as read by librdkafka's kcat on Apache Kafka.

    The embedded broker's ApiVersions answer is malformed for librdkafka clients, so there
    the values are read with a bare kafka-python consumer instead.
    """
    if isinstance(broker, str):
        kcat = shutil.which("kcat")
        assert kcat, "kcat is missing: bash .ci/services installs it"
        result = subprocess.run(
            [kcat, "-b", broker, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        messages = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        messages.sort(key=lambda m: (m["partition"], m["offset"]))
        return [m["payload"].encode() for m in messages if m.get("payload") is not None]
    return [r.value for r in read_topic(topic) if r.value is not None]
