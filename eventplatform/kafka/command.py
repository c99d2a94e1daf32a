"""Base class for consumer commands: one line of declaration, the runtime does the rest."""

from django.core.management.base import BaseCommand

from .consumer import BatchConsumer, ConsumerRuntime


class ConsumerCommand(BaseCommand):
    """``manage.py <name>`` running a :class:`BatchConsumer` under the consumer runtime."""

    consumer_class: type[BatchConsumer]

    def add_arguments(self, parser):
        parser.add_argument(
            "--max-retries",
            type=int,
            default=3,
            help="attempts for a failing batch before record-by-record",
        )

    def build_consumer(self, **options) -> BatchConsumer:
        return self.consumer_class()

    def handle(self, *args, **options):
        runtime = ConsumerRuntime(
            self.build_consumer(**options), max_retries=options["max_retries"]
        )
        runtime.install_signal_handlers()
        runtime.run()
