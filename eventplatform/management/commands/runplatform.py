import os
import signal
import socket
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventplatform.embedded.lock import PlatformAlreadyRunning, PlatformLock
from eventplatform.embedded_redis import EmbeddedRedis
from eventplatform.kafka.broker import EMBEDDED_BROKER_ENV, EmbeddedBroker
from eventplatform.supervisor import Infrastructure, ProcessSpec, Supervisor, read_procfile

#: The child that keeps the compacted topics in ``var/journal`` (embedded broker only).
JOURNAL = "journal"
#: Written once every process stopped in order; missing at start means the last run crashed.
CLEAN_STOP = "clean-stop"


class Command(BaseCommand):
    help = (
        "Run the whole platform on embedded defaults: broker and Redis when not configured, "
        "migrations, topics, then every Procfile process. Ctrl-C stops everything."
    )

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
        self.verbose = options["verbosity"] > 1
        port = options["port"]
        read_port = options["read_api_port"] or port + 1
        lock = PlatformLock(settings.VAR_DIR)
        try:
            lock.acquire(port=port)
        except PlatformAlreadyRunning as error:
            raise CommandError(str(error)) from None
        for wanted in (port, read_port):
            if not _port_free(wanted):
                raise CommandError(
                    f"port {wanted} is already in use: choose another, e.g. "
                    f"python3 dev.py run --port {port + 10}"
                )
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", LOG_LEVEL=options["log_level"].upper())
        self.journal_dir = settings.VAR_DIR / "journal"
        self.broker = self.redis = self.supervisor = None
        # Stop cleanly on SIGTERM too (Ctrl-C arrives as KeyboardInterrupt during set-up).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            self._start_infrastructure()
            restored = self._set_up(*self._after_a_crash())
            self.say(
                "ready: databases migrated, topics created"
                + (f", {restored} journaled records restored" if self.broker else "")
            )
            self.env.update(PORT=str(port), READ_API_PORT=str(read_port))
            self._supervise(options["procfile"], port, read_port)
            if self.broker:
                self.journal_dir.mkdir(parents=True, exist_ok=True)
                (self.journal_dir / CLEAN_STOP).touch()
        except KeyboardInterrupt:
            self.say("interrupted during start-up")
        finally:
            if self.redis:
                self.redis.stop()
            if self.broker:
                self.broker.stop()
            if self.broker or self.redis:
                settings.EMBEDDED_ENV_FILE.unlink(missing_ok=True)
            lock.release()
            self.say("platform stopped")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    # -- embedded infrastructure ---------------------------------------------------------

    def _start_infrastructure(self) -> None:
        embedded = {}
        if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.broker = EmbeddedBroker(log_path=settings.VAR_DIR / "broker.log").start()
            embedded["KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap_servers
            embedded.update(EMBEDDED_BROKER_ENV)
            self.say(
                f"embedded broker on {self.broker.bootstrap_servers} "
                f"(pid {self.broker.pid}; state journaled in {self.journal_dir})"
            )
        if not os.environ.get("REDIS_URL"):
            self.redis = EmbeddedRedis(
                settings.VAR_DIR / "redis.sock", log_path=settings.VAR_DIR / "redis.log"
            ).start()
            embedded["REDIS_URL"] = self.redis.url
            self.say(f"embedded Redis on {self.redis.url} (pid {self.redis.pid})")
        settings.EMBEDDED_ENV_FILE.write_text("".join(f"{k}={v}\n" for k, v in embedded.items()))
        self.env.update(embedded)

    def _set_up(self, *options: str) -> int:
        """Run the set-up steps (all, or ``--topics-only``) in one process; returns how many
        journaled records were restored into a fresh embedded broker."""
        journal = ["--journal", str(self.journal_dir)] if self.broker else []
        output = self._run(
            [sys.executable, "-m", "eventplatform.embedded.setup", *journal, *options]
        )
        return int(output.splitlines()[-1].split()[1])

    def _after_a_crash(self) -> list[str]:
        """Set-up options for a start after a run that did not stop in order."""
        marker = self.journal_dir / CLEAN_STOP
        crashed = self.broker is not None and self.journal_dir.exists() and not marker.exists()
        marker.unlink(missing_ok=True)
        return ["--republish-sites"] if crashed else []

    def _recover_broker(self) -> None:
        # Nothing may write while the journal is replayed, or a newer write could land
        # before an older journaled one; so every process waits, then starts again.
        self.supervisor.hold_all()
        if not self.broker.alive():
            self.broker.stop()
            self.broker.start()
        restored = self._set_up("--topics-only", "--republish-sites")
        self.say(f"broker restarted: topics created, {restored} journaled records restored")
        self.supervisor.release_all()

    def _recover_redis(self) -> None:
        self.redis.stop()
        self.redis.start()

    # -- the processes -------------------------------------------------------------------

    def _supervise(self, procfile: str, port: int, read_port: int) -> None:
        specs = read_procfile(settings.BASE_DIR / procfile)
        infrastructure = []
        if self.broker:
            specs.append(
                ProcessSpec(
                    JOURNAL,
                    f"python -m eventplatform.embedded.journal {self.journal_dir}",
                    stop_last=True,
                )
            )
            infrastructure.append(
                Infrastructure(
                    "broker", self.broker.alive, self._recover_broker, lambda: self.broker.pid
                )
            )
        if self.redis:
            infrastructure.append(
                Infrastructure(
                    "redis", self.redis.alive, self._recover_redis, lambda: self.redis.pid
                )
            )
        self.supervisor = Supervisor(
            specs,
            env=self.env,
            cwd=settings.BASE_DIR,
            out=self.stdout._out,
            infrastructure=infrastructure,
            status_path=settings.PLATFORM_STATUS_FILE,
        )
        signal.signal(signal.SIGINT, self.supervisor.request_stop)
        signal.signal(signal.SIGTERM, self.supervisor.request_stop)
        self.say(
            f"\n  web        http://127.0.0.1:{port}/\n"
            f"  admin      http://127.0.0.1:{port}/admin/\n"
            f"  API docs   http://127.0.0.1:{port}/api/docs\n"
            f"  read API   http://127.0.0.1:{read_port}/api/installed-apps/...\n"
        )
        self.supervisor.run()

    def _run(self, argv: list[str]) -> str:
        """Run a set-up step quietly; its output is shown with -v 2 or when it fails."""
        result = subprocess.run(
            argv, cwd=settings.BASE_DIR, env=self.env, capture_output=True, text=True
        )
        if self.verbose or result.returncode:
            self.stdout.write(result.stdout + result.stderr)
        if result.returncode:
            raise CommandError(f"{' '.join(argv[1:])} failed with {result.returncode}")
        return result.stdout


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers bind: connections of a stopped server lingering in TIME_WAIT do
        # not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
