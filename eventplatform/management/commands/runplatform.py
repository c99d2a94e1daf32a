import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from eventplatform.embedded_redis import EmbeddedRedis
from eventplatform.kafka.broker import EMBEDDED_BROKER_ENV, EmbeddedBroker
from eventplatform.supervisor import Supervisor, read_procfile

#: One-shot commands run after migrations and topics, before the processes start.
SETUP_COMMANDS = [
    ["create_topics"],
    ["kv", "seed"],
]


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

    def handle(self, *args, **options):
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        broker = redis_server = None
        # Stop cleanly on SIGTERM too (Ctrl-C arrives as KeyboardInterrupt during set-up).
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            embedded = {}
            if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
                broker = EmbeddedBroker(log_path=settings.VAR_DIR / "broker.log").start()
                embedded["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers
                embedded.update(EMBEDDED_BROKER_ENV)
                self.stdout.write(
                    f"embedded broker on {broker.bootstrap_servers} "
                    "(in memory: topics vanish when it stops)"
                )
            if not os.environ.get("REDIS_URL"):
                redis_server = EmbeddedRedis(
                    settings.VAR_DIR / "redis.sock", log_path=settings.VAR_DIR / "redis.log"
                ).start()
                embedded["REDIS_URL"] = redis_server.url
                self.stdout.write(f"embedded Redis on {redis_server.url}")
            settings.EMBEDDED_ENV_FILE.write_text(
                "".join(f"{k}={v}\n" for k, v in embedded.items())
            )
            env.update(embedded)
            for database in ("default", "projections"):
                self._manage(env, "migrate", "--database", database, "--no-input", "-v", "0")
            self._manage(env, "ensure_dev_superuser")
            for command in SETUP_COMMANDS:
                self._manage(env, *command)
            port = options["port"]
            read_port = options["read_api_port"] or port + 1
            env.update(PORT=str(port), READ_API_PORT=str(read_port))
            supervisor = Supervisor(
                read_procfile(settings.BASE_DIR / options["procfile"]),
                env=env,
                cwd=settings.BASE_DIR,
                out=self.stdout._out,
            )
            signal.signal(signal.SIGINT, supervisor.request_stop)
            signal.signal(signal.SIGTERM, supervisor.request_stop)
            self.stdout.write(
                f"\n  web        http://127.0.0.1:{port}/\n"
                f"  admin      http://127.0.0.1:{port}/admin/\n"
                f"  API docs   http://127.0.0.1:{port}/api/docs\n"
                f"  read API   http://127.0.0.1:{read_port}/api/installed-apps/...\n"
            )
            status = supervisor.run()
            if status:
                raise CommandError(f"process {supervisor.failed!r} kept failing")
        except KeyboardInterrupt:
            self.stdout.write("interrupted during start-up")
        finally:
            if redis_server:
                redis_server.stop()
            if broker:
                broker.stop()
            if broker or redis_server:
                settings.EMBEDDED_ENV_FILE.unlink(missing_ok=True)
            self.stdout.write("platform stopped")

    def _manage(self, env: dict[str, str], *args: str) -> None:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=settings.BASE_DIR, env=env
        )
        if result.returncode:
            raise CommandError(f"manage.py {' '.join(args)} failed with {result.returncode}")
