from eventplatform.kafka.command import ConsumerCommand
from sites.projection.consumer import InstalledAppsProjector, rebuild


class Command(ConsumerCommand):
    help = (
        "Project sites.metadata into the installed-apps read model (projections database). "
        "With --rebuild: replay the topic from the beginning into a new generation beside "
        "the live one, switch readers to it once complete, and exit."
    )
    consumer_class = InstalledAppsProjector

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
        generation = rebuild(max_retries=options["max_retries"], install_signal_handlers=True)
        if generation is None:
            self.stderr.write("rebuild stopped before it was complete; readers kept the old one")
            raise SystemExit(1)
        self.stdout.write(f"rebuild complete: generation {generation} is live")
