from eventplatform.kafka.command import ConsumerCommand
from tests.runtime_app.consumers import RecordingConsumer


class Command(ConsumerCommand):
    help = "Test-only consumer that records every record it applies."
    consumer_class = RecordingConsumer

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--store-offsets", action="store_true")
        parser.add_argument("--batch-size", type=int, default=50)

    def build_consumer(self, **options):
        return RecordingConsumer(
            store_offsets=options["store_offsets"], max_batch_size=options["batch_size"]
        )
