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
