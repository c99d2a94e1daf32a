from django.core.management.base import CommandError

from eventplatform.cli import PlatformCommand, progress
from sites.selectors import count_sites
from sites.services import publish_every_site


class Command(PlatformCommand):
    help = (
        "Backfill: publish the current snapshot of every site through the outbox, in chunks "
        "with constant memory, so a new projection can start from a full topic."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="publish every site")
        parser.add_argument("--chunk-size", type=int, default=500)

    def handle(self, *args, **options):
        if not options["all"]:
            raise CommandError("nothing to publish: pass --all")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1")
        sites = publish_every_site(chunk_size=options["chunk_size"])
        published = 0
        for _ in progress(
            sites, total=count_sites(), what="publishing sites", stream=self.stderr, unit="site"
        ):
            published += 1
        self.stdout.write(f"published {published} site snapshots to the outbox")
