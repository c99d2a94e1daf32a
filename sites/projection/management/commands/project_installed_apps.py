import itertools

from django.core.management.base import CommandError

from eventplatform.cli import PlatformCommand, progress
from eventplatform.kafka.command import ConsumerCommand
from sites.projection.consumer import InstalledAppsProjector, RebuildBlocked, rebuild
from sites.projection.generations import RebuildSuperseded


class Command(ConsumerCommand, PlatformCommand):
    help = (
        "Project sites.metadata into the installed-apps read model (projections database). "
        "With --rebuild: replay the topic from the beginning into a new generation beside "
        "the live one, switch readers to it once complete, and exit."
    )
    consumer_class = InstalledAppsProjector
    user_errors = (RebuildBlocked, RebuildSuperseded)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="build a fresh projection from the whole topic, then switch to it",
        )

    def handle(self, *args, **options):
        if not options["rebuild"]:
            return super().handle(*args, **options)
        replayed = ReplayProgress(stream=self.stderr)
        try:
            generation = rebuild(
                max_retries=options["max_retries"],
                install_signal_handlers=True,
                on_replayed=replayed.advance,
            )
        finally:
            replayed.close()
        if generation is None:
            raise CommandError("rebuild stopped before it was complete; readers kept the old one")
        self.stdout.write(f"rebuild complete: generation {generation} is live")


class ReplayProgress:
    """A progress bar of the records a rebuild replayed, shown from the first batch on.

    The replay's size is known only once the group assigned the partitions, so the bar
    counts records (and their rate) rather than a share of a total.
    """

    def __init__(self, stream):
        self.stream = stream
        self._ticks = None

    def advance(self, count: int) -> None:
        if self._ticks is None:
            self._ticks = progress(
                itertools.repeat(None),
                total=None,
                what="rebuilding the installed-apps projection",
                stream=self.stream,
                unit=" records",
            )
        for _ in itertools.islice(self._ticks, count):
            pass

    def close(self) -> None:
        if self._ticks is None:
            return
        # The bar counts an item once the next one is asked for: ask once more, so the
        # last record replayed is counted before the bar closes.
        next(self._ticks)
        self._ticks.close()
