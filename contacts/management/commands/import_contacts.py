from contacts.importer import ContactImporter
from eventplatform.kafka.command import ConsumerCommand


class Command(ConsumerCommand):
    help = "Import contacts batches from contacts.import-jobs; progress goes to notifications."
    consumer_class = ContactImporter
