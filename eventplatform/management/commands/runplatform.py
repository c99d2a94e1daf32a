from django.conf import settings

from eventplatform.cli import PlatformCommand
from eventplatform.embedded.lock import PlatformAlreadyRunning
from eventplatform.embedded.process import ChildUnavailable
from eventplatform.embedded.runner import PlatformRunner, PortInUse, SetupFailed


class Command(PlatformCommand):
    help = (
        "Run the whole platform on embedded defaults: broker and Redis when not configured, "
        "migrations, topics, then every Procfile process. Ctrl-C stops everything."
    )
    user_errors = (PlatformAlreadyRunning, PortInUse, SetupFailed, ChildUnavailable)

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web (daphne) port")
        parser.add_argument(
            "--read-api-port",
            type=int,
            default=None,
            help="read-API (gunicorn) port, default PORT+1",
        )
        parser.add_argument("--procfile", default=str(settings.BASE_DIR / "Procfile"))
        parser.add_argument(
            "--log-level",
            default="WARNING",
            help="log level of the processes (default WARNING; INFO shows every step)",
        )

    def handle(self, *args, **options):
        PlatformRunner(
            port=options["port"],
            read_api_port=options["read_api_port"],
            procfile=options["procfile"],
            log_level=options["log_level"],
            verbose=options["verbosity"] > 1,
            out=self.stdout._out,
        ).run()
