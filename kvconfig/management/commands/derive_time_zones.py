"""``manage.py derive_time_zones``: keep ``time-zones`` in line with ``supported-countries``."""

import logging
import queue
import signal
import threading

from django.core.management.base import BaseCommand

from kvconfig.derivation import reconcile, sync_country
from kvconfig.namespaces import SUPPORTED_COUNTRIES, TIME_ZONES
from kvconfig.store import KVError
from kvconfig.stores import get_store

logger = logging.getLogger("kvconfig.derivation")


class Command(BaseCommand):
    help = (
        "Follow supported-countries and write each country's time zones (from the tz "
        "database) to time-zones; delete them when the country goes. Runs until SIGTERM."
    )

    def handle(self, *args, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        countries = get_store(SUPPORTED_COUNTRIES.name)
        time_zones = get_store(TIME_ZONES.name)
        changed: queue.Queue[str] = queue.Queue()
        # Subscribe before catching up, so no change between the reconcile and the loop is
        # missed; replaying one is harmless because syncing compares states.
        countries.subscribe(lambda key, old, new: changed.put(key))
        countries.wait_ready()
        time_zones.wait_ready()
        outcomes = reconcile(countries=countries, time_zones=time_zones)
        logger.info("time zones reconciled", extra=outcomes)
        while not stop.is_set():
            try:
                country = changed.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                outcome = sync_country(country=country, countries=countries, time_zones=time_zones)
            except KVError as error:
                # Broker trouble: try this country again shortly, keep the order of the rest.
                logger.warning("sync failed, retrying", extra={"country": country, "error": error})
                changed.put(country)
                stop.wait(1)
                continue
            logger.info("country synced", extra={"country": country, "outcome": outcome})
