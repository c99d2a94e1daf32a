"""The KV app's long-running consumers, declared on the platform's consumer runtime."""

import logging

from eventplatform.kafka.consumer import BatchConsumer, Message
from eventplatform.kafka.registry import register

from .derivation import reconcile, sync_country
from .namespaces import SUPPORTED_COUNTRIES, TIME_ZONES
from .schema import KVValidationError
from .stores import get_store

logger = logging.getLogger("kvconfig.derivation")


@register
class TimeZoneDeriver(BatchConsumer):
    """kv.supported-countries changes → each country's time zones written to kv.time-zones.

    A batch names the countries that changed; each is synced from the process's stores,
    which the runtime's offsets follow: the group's commit comes only after the writes are
    confirmed, so a crash redelivers the batch, and syncing compares states, so the replay
    writes nothing twice. Whoever holds the partition also reconciles every country of both
    stores once after each assignment: that catches what no record announces any more (a
    tombstone compacted away while no deriver ran, a time zone left without its country).
    """

    name = "derive_time_zones"
    topics = (SUPPORTED_COUNTRIES.topic,)
    # The reconcile runs between batches on the loop's thread (an assignment callback must
    # not block), so soon after an assignment.
    periodic_seconds = 0.5

    def __init__(self):
        self.countries = get_store(SUPPORTED_COUNTRIES.name)
        self.time_zones = get_store(TIME_ZONES.name)
        self._reconcile_due = False

    def on_assigned(self, partitions) -> None:
        if partitions:
            self._reconcile_due = True

    def periodic(self) -> None:
        if not self._reconcile_due:
            return
        outcomes = reconcile(countries=self.countries, time_zones=self.time_zones)
        self._reconcile_due = False  # a failure above leaves it due: tried again shortly
        logger.info("time zones reconciled", extra=outcomes)

    def handle_batch(self, messages: list[Message]) -> None:
        # The countries store reads the same topic on its own: once it shows this batch
        # (or later records), syncing from it covers every record of the batch.
        last_offsets: dict[int, int] = {}
        for message in messages:
            partition, offset = message.record.partition, message.record.offset
            last_offsets[partition] = max(last_offsets.get(partition, -1), offset)
        self.countries.wait_until_applied(last_offsets)
        for country in dict.fromkeys(m.key for m in messages if m.key):
            try:
                outcome = sync_country(
                    country=country, countries=self.countries, time_zones=self.time_zones
                )
            except KVValidationError as error:
                # Tz data this deriver cannot write; retrying would fail the same way.
                logger.error("time zones not derived", extra={"country": country, "error": error})
                continue
            logger.info("country synced", extra={"country": country, "outcome": outcome})
