"""Topics owned by the sites module."""

from eventplatform.kafka.topics import declare

#: Key: site id. Value: a full site snapshot event (or a deletion), see ``sites.events``.
SITES_METADATA = declare("sites.metadata", partitions=6).name
