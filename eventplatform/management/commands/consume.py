"""``manage.py consume NAME``: run any registered consumer; ``--list`` shows them all."""

from django.core.management.base import CommandError

from eventplatform.kafka.command import ConsumerCommand
from eventplatform.kafka.consumer import BatchConsumer
from eventplatform.kafka.registry import UnknownConsumer, get_declaration, registered


class Command(ConsumerCommand):
    help = (
        "Run the consumer registered as NAME under the consumer runtime until SIGTERM; "
        "--list shows every registered consumer (name, topics, group, what it does)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("name", nargs="?", help="a consumer's name (see --list)")
        parser.add_argument("--list", action="store_true", help="show the registered consumers")

    def handle(self, *args, **options):
        if options["list"]:
            self._list()
            return
        if not options["name"]:
            raise CommandError("name a consumer to run, or --list to see them")
        super().handle(*args, **options)

    def build_consumer(self, *, name: str, **options) -> BatchConsumer:
        try:
            return get_declaration(name).build()
        except UnknownConsumer as error:
            raise CommandError(str(error)) from None

    def _list(self) -> None:
        rows = [("NAME", "TOPICS", "GROUP", "DESCRIPTION")]
        rows += [(d.name, ",".join(d.topics), d.group, d.description) for d in registered()]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[3]]).rstrip())
