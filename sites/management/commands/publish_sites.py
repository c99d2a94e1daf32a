from django.core.management.base import BaseCommand, CommandError

from sites.services import publish_all_sites


class Command(BaseCommand):
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
        published = publish_all_sites(chunk_size=options["chunk_size"])
        self.stdout.write(f"published {published} site snapshots to the outbox")
