"""Fixtures for the sites tests: authenticated API clients (the owner's token, a read-only
service token as ``client``), the relay and the projector run in-process until the topic is
drained (and the replica has replayed it), and direct event publishing."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from eventplatform.kafka.config import dlq_name, topic_name
from eventplatform.kafka.consumer import ConsumerRuntime
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.producer import send, wait_all
from eventplatform.models import ApiToken
from eventplatform.outbox import OutboxRelay
from eventplatform.replica import wait_for_replay
from sites.projection.consumer import CaughtUp, InstalledAppsProjector
from sites.topics import SITES_METADATA
from tests.helpers import read_topic

ALL_DATABASES = ["default", "projections", "projections_replica"]
#: Marks a test that uses every database outside a wrapping transaction (other processes,
#: the projector's own transactions).
all_databases = pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="s3cret-pass")


@pytest.fixture
def api(user):
    """A client that sends a bearer token on every request."""
    return token_client(user)


def token_client(user, *, read_only: bool = False) -> Client:
    """A client that sends a fresh bearer token of ``user`` on every request."""
    _, token = ApiToken.issue(user, read_only=read_only)
    return Client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def client(db):
    """Reads as a service would: a read-only token (no API path answers anonymously)."""
    reader = get_user_model().objects.create_user("reader")
    return token_client(reader, read_only=True)


@pytest.fixture
def relay_all():
    """Relay every pending outbox row to Kafka; returns how many were sent."""

    def relay() -> int:
        relay, sent = OutboxRelay(), 0
        while batch := relay.relay_once():
            sent += batch
        return sent

    return relay


@pytest.fixture
def project_all():
    """Run the projector in this process until it has consumed everything in the topic, then
    wait until the replica has replayed it (unless ``replicated=False``)."""

    def project(consumer=None, *, replicated: bool = True):
        runtime = ConsumerRuntime(consumer or InstalledAppsProjector(), poll_timeout_ms=100)
        stats = runtime.run(until=CaughtUp())
        if replicated:
            # Reads go to the replica: a standby shows the projection once it replayed it.
            wait_for_replay()
        return stats

    return project


@pytest.fixture
def send_raw(kafka):
    """Send raw values (events or garbage) straight to sites.metadata, keyed by site id."""

    def send_values(*items: tuple[str, bytes | Event]):
        futures = [
            send(
                topic_name(SITES_METADATA),
                key=key,
                value=value.encode() if isinstance(value, Event) else value,
            )
            for key, value in items
        ]
        wait_all(futures)

    return send_values


def read_dlq() -> list:
    """Every record in the sites.metadata DLQ."""
    return read_topic(dlq_name(topic_name(SITES_METADATA)))
