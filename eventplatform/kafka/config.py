"""Client configuration shared by every producer, consumer and admin client."""

from django.conf import settings


def client_options() -> dict:
    """Bootstrap servers plus the security settings (SASL/SSL) from the environment."""
    return {
        "bootstrap_servers": settings.KAFKA_BOOTSTRAP_SERVERS.split(","),
        **settings.KAFKA_CLIENT_OPTIONS,
    }


def consumer_options() -> dict:
    """:func:`client_options` for a consumer: committed records only, never creating topics."""
    return {
        **client_options(),
        # Topics exist only as ``create_topics`` declares them; a missing one is an error.
        "allow_auto_create_topics": False,
        "isolation_level": "read_committed",
    }


def fetch_max_wait_ms(*, interactive: bool = False) -> int:
    """How long the broker may hold a fetch that finds nothing new.

    A broker that long-polls (Apache Kafka) answers as soon as a record arrives, so the
    wait only bounds idle round trips. The embedded broker instead sleeps out the whole
    wait before it looks again, so a record reaches a waiting consumer up to this long
    after it landed. Readers whose records a person is waiting to see (live
    notifications, configuration) are ``interactive``: the embedded stack gives them a
    short wait, paid for with more idle fetches.
    """
    if interactive:
        return settings.KAFKA_INTERACTIVE_FETCH_MAX_WAIT_MS
    return settings.KAFKA_FETCH_MAX_WAIT_MS


def topic_name(name: str) -> str:
    """The physical topic for a logical name, with ``KAFKA_TOPIC_PREFIX`` for isolation."""
    prefix = settings.KAFKA_TOPIC_PREFIX
    return f"{prefix}{name}" if prefix else name


def logical_name(topic: str) -> str:
    """Inverse of :func:`topic_name`."""
    return topic.removeprefix(settings.KAFKA_TOPIC_PREFIX)


def dlq_name(topic: str) -> str:
    """The dead-letter topic of a physical topic."""
    return f"{topic}.dlq"
