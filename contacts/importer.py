"""The ``import_contacts`` consumer: ``contacts.import-jobs`` batches → contacts."""

from django.conf import settings

from eventplatform.kafka.consumer import BatchConsumer, Message
from eventplatform.kafka.envelope import Event

from .batch_import import import_batches
from .events import TOPIC, ImportBatch
from .sweeper import sweep_imports


class ContactImporter(BatchConsumer):
    name = "import_contacts"
    topics = (TOPIC,)
    # Each batch's upserts, done-batch row and outbox notifications commit together.
    database = "default"
    # One record carries ~500 rows: a few records make a transaction of a useful size.
    max_batch_size = 8

    @property
    def periodic_seconds(self) -> float:
        """How often this importer sweeps (``CONTACTS_SWEEP_SECONDS``, 30 s by default)."""
        return settings.CONTACTS_SWEEP_SECONDS

    def decode(self, record) -> ImportBatch:
        return ImportBatch.from_event(Event.decode(record.value).require_major(1))

    def handle_batch(self, messages: list[Message]) -> None:
        import_batches(batches=[message.value for message in messages])

    def periodic(self) -> None:
        """Every importer sweeps for lost splits and stalled jobs (claims keep it once)."""
        sweep_imports()
