"""Topics owned by the platform itself."""

from django.conf import settings

from eventplatform.kafka.topics import declare

# Keyed by channel, so one channel's notifications keep their order on one partition.
# Short-lived: a notification matters while someone watches; history lives in Redis.
NOTIFICATIONS = declare(
    "notifications",
    partitions=6,
    config={"retention.ms": str(settings.KAFKA_NOTIFICATIONS_RETENTION_MS)},
)
