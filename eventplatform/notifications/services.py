"""Send notifications to a browser channel, from any module.

Both functions put one envelope on the ``notifications`` topic keyed by the channel; the
envelope id is the message id the relay uses to give a redelivered record its first
sequence number again.
"""

from typing import Any

from django.db import DEFAULT_DB_ALIAS

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.producer import send
from eventplatform.outbox import publish
from eventplatform.topics import NOTIFICATIONS

TOPIC = NOTIFICATIONS.name
EVENT_TYPE = "notification"


def _event(channel: str, message: dict[str, Any]) -> Event:
    return Event(type=EVENT_TYPE, data={"channel": channel, "message": message})


def notify(channel: str, message: dict[str, Any]):
    """Produce ``message`` to ``channel`` now; returns the send future (``.get()`` to wait)."""
    return send(topic_name(TOPIC), key=channel, value=_event(channel, message).encode())


def notify_in_transaction(
    channel: str, message: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS
) -> None:
    """Queue ``message`` through the outbox: sent if and only if the transaction commits."""
    publish(TOPIC, channel, _event(channel, message), using=using)
