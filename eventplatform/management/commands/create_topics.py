from eventplatform.cli import PlatformCommand
from eventplatform.kafka.topics import ensure_topics


class Command(PlatformCommand):
    help = "Create every declared topic (and its DLQ) that is missing; safe to run again."

    def handle(self, *args, **options):
        created, present = ensure_topics()
        for name in created:
            self.stdout.write(f"created {name}")
        self.stdout.write(f"{len(created)} created, {len(present)} already present")
