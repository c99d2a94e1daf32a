"""Topics owned by the platform itself."""

from eventplatform.kafka.topics import declare

# Keyed by channel, so one channel's notifications keep their order on one partition.
NOTIFICATIONS = declare("notifications", partitions=6)
