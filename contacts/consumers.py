"""The contacts app's long-running consumers (``manage.py consume --list`` shows them)."""

from eventplatform.kafka.registry import register

from .importer import ContactImporter

register(
    ContactImporter,
    description="contacts.import-jobs batches → contacts; progress → notifications",
)
