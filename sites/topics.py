"""Topics owned by the sites module."""

from eventplatform.kafka.topics import COMPACT, declare

#: Key: site id. Value: a full site snapshot event (or a deletion), see ``sites.events``.
#: Compacted, not expired: each event is a whole snapshot, so the latest one per site is all
#: a rebuild or a new projection needs, however old it is.
SITES_METADATA = declare("sites.metadata", partitions=6, config=COMPACT).name
