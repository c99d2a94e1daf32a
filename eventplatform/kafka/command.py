"""Base class for consumer commands: one line of declaration, the runtime does the rest."""

from eventplatform.cli import PlatformCommand

from .consumer import BatchConsumer, ConsumerRuntime


class ConsumerCommand(PlatformCommand):
    """``manage.py <name>`` running a :class:`BatchConsumer` under the consumer runtime.

    The consumer is registered by its app (see :mod:`.registry`), so ``manage.py consume
    <name>`` runs the same thing; the named command keeps the Procfile readable.
    """

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
