import signal

from eventplatform.cli import PlatformCommand
from eventplatform.outbox import OutboxRelay


class Command(PlatformCommand):
    help = "Relay outbox rows to Kafka in id order, at least once, surviving broker downtime."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, **options):
        relay = OutboxRelay(batch_size=options["batch_size"])
        signal.signal(signal.SIGTERM, relay.request_stop)
        signal.signal(signal.SIGINT, relay.request_stop)
        # From here on a SIGTERM stops it cleanly; before, it ends the process.
        self.stdout.write("relay started", ending="\n")
        self.stdout.flush()
        relay.run()
        self.stdout.write(f"relay stopped after sending {relay.sent} rows")
