"""The ``import_contacts`` consumer: ``contacts.import-jobs`` batches → contacts."""

import time

from django.conf import settings
from django.utils import timezone

from eventplatform.kafka.consumer import BatchConsumer, Message
from eventplatform.kafka.envelope import Event

from .batch_import import import_batches
from .events import TOPIC, ImportBatch
from .retention import delete_expired_uploads
from .sweeper import sweep_imports


class ContactImporter(BatchConsumer):
    name = "import_contacts"
    topics = (TOPIC,)
    # Each batch's upserts, done-batch row and outbox notifications commit together.
    database = "default"
    # One record carries ~500 rows: a few records make a transaction of a useful size.
    max_batch_size = 8
    #: A sweep this much later than due means the runtime was held up: waiting out an
    #: outage, or a batch waiting on a lock. No batch takes that long to import.
    HELD_UP_SECONDS = 10.0

    def __init__(self):
        # This process could not import before it started: its predecessor may have been
        # down a long time, with batches waiting.
        self._able_since = timezone.now()
        self._last_sweep = time.monotonic()

    @property
    def periodic_seconds(self) -> float:
        """How often this importer sweeps (``CONTACTS_SWEEP_SECONDS``, 30 s by default)."""
        return settings.CONTACTS_SWEEP_SECONDS

    def decode(self, record) -> ImportBatch:
        return ImportBatch.from_event(Event.decode(record.value).require_major(1))

    def handle_batch(self, messages: list[Message]) -> None:
        import_batches(batches=[message.value for message in messages])

    def periodic(self) -> None:
        """Every importer sweeps for lost splits and stalled jobs (claims keep it once).

        A job counts as stalled only after this importer could work for the whole stall
        bound: its batches may be waiting behind an outage, which says nothing of them.
        """
        now = time.monotonic()
        if now - self._last_sweep > self.periodic_seconds + self.HELD_UP_SECONDS:
            self._able_since = timezone.now()
        self._last_sweep = now
        try:
            sweep_imports(importers_able_since=self._able_since)
        except Exception:
            self._able_since = timezone.now()  # the database is out, most likely
            raise
        delete_expired_uploads()
