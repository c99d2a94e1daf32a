"""``manage.py derive_time_zones``: keep ``time-zones`` in line with ``supported-countries``."""

from eventplatform.kafka.command import ConsumerCommand
from kvconfig.consumers import TimeZoneDeriver


class Command(ConsumerCommand):
    help = (
        "Follow supported-countries and write each country's time zones (from the tz "
        "database) to time-zones; delete them when the country goes. Runs until SIGTERM."
    )
    consumer_class = TimeZoneDeriver
