"""``manage.py dlq list|show|replay|discard``: look at dead-lettered records and deal with them.

The same actions as the operations console, audited the same way (the actor is
``cli:<login>``).
"""

import getpass
import json

from django.core.management.base import CommandError

from eventplatform.cli import PlatformCommand, progress
from eventplatform.kafka import dlq
from eventplatform.kafka.config import logical_name

DLQ_HELP = "the DLQ or its source topic, e.g. sites.metadata"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class Command(PlatformCommand):
    help = "List, show, replay or discard dead-lettered records."
    user_errors = (dlq.DeadLetterError,)

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        actions.add_parser("list", help="every DLQ with its pending and handled records")
        show = actions.add_parser("show", help="the pending records of one DLQ")
        show.add_argument("topic", metavar="DLQ", help=DLQ_HELP)
        show.add_argument("refs", nargs="*", metavar="PARTITION:OFFSET", help="only these")
        show.add_argument("--json", action="store_true", help="one JSON object per line")
        for name, what in (("replay", "produce to the source topic again"), ("discard", "drop")):
            sub = actions.add_parser(name, help=f"{what}: the named records, or --all")
            sub.add_argument("topic", metavar="DLQ", help=DLQ_HELP)
            sub.add_argument("refs", nargs="*", metavar="PARTITION:OFFSET")
            sub.add_argument("--all", action="store_true", help="every pending record")

    def handle(self, *args, **options):
        getattr(self, f"_{options['action']}")(**options)

    def _list(self, **options):
        for topic in dlq.dead_letter_topics():
            records = dlq.read_all(topic)
            done = dlq.handled(topic)
            waiting = sum(1 for r in records if (r.partition, r.offset) not in done)
            self.stdout.write(
                f"{logical_name(topic)}\t{waiting} pending\t{len(records) - waiting} handled"
            )

    def _show(self, *, topic: str, refs: list[str], **options):
        topic = dlq.resolve_dlq(topic)
        letters = dlq.find(topic, refs) if refs else dlq.pending(topic)
        for letter in letters:
            view = letter.as_dict()
            if options["json"]:
                self.stdout.write(json.dumps(view))
                continue
            self.stdout.write(f"{view['ref']}\tkey={view['key']}\t{view['timestamp']}")
            for name, value in view["headers"].items():
                self.stdout.write(f"  {name}: {value}")
            self.stdout.write(f"  value: {view['value']}")
        if not letters:
            self.stdout.write(f"{logical_name(topic)}: no pending records")

    def _replay(self, **options):
        self._act(dlq.replay, "replayed", **options)

    def _discard(self, **options):
        self._act(dlq.discard, "discarded", **options)

    def _act(self, apply, done: str, *, topic: str, refs: list[str], **options):
        if bool(refs) == bool(options["all"]):
            raise CommandError("name the records (PARTITION:OFFSET ...) or give --all, not both")
        topic = dlq.resolve_dlq(topic)
        letters = dlq.find(topic, refs) if refs else dlq.pending(topic)
        count = apply(
            progress(letters, total=len(letters), what=done, stream=self.stderr, unit="record"),
            actor=_actor(),
        )
        self.stdout.write(f"{count} record(s) of {logical_name(topic)} {done}")
