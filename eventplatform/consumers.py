"""The platform's own long-running consumers (``manage.py consume --list`` shows them)."""

from eventplatform.kafka.registry import register
from eventplatform.notifications.relay import NotificationRelay

register(
    NotificationRelay,
    description="notifications topic → Channels groups → browsers (with replay)",
)
