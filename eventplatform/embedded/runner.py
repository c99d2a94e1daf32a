"""What ``runplatform`` does: the whole platform as children of one process.

In order: take the one-platform lock of ``var/``, check the ports, start the embedded
broker and Redis (each only when not configured), run the set-up steps (migrations,
topics, the journal's replay, the start hooks), then supervise every Procfile process (and
the topic journal) until Ctrl-C or SIGTERM, and stop everything in order. A dead broker
or Redis is restarted while the rest waits.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from eventplatform.embedded.broker import EMBEDDED_BROKER_ENV, EmbeddedBroker
from eventplatform.embedded.lock import PlatformLock
from eventplatform.embedded.ports import port_free
from eventplatform.embedded.redis_server import EmbeddedRedis
from eventplatform.embedded.supervisor import (
    Infrastructure,
    ProcessSpec,
    Supervisor,
    read_procfile,
)

#: The child that keeps the compacted topics in ``var/journal`` (embedded broker only).
JOURNAL = "journal"
#: Written once every process stopped in order; missing at start means the last run crashed.
CLEAN_STOP = "clean-stop"


class PortInUse(RuntimeError):
    """A port the platform needs is taken; the message suggests ``--port``."""


class SetupFailed(RuntimeError):
    """A set-up step (migrations, topics, the journal's replay) failed."""


class PlatformRunner:
    """One run of the platform on this checkout's ``var/`` (see the module's docstring)."""

    def __init__(
        self,
        *,
        port: int,
        read_api_port: int | None,
        procfile: Path,
        log_level: str,
        verbose: bool,
        out,
    ):
        self.port = port
        self.read_port = read_api_port or port + 1
        self.procfile = procfile
        self.verbose = verbose
        self.out = out
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", LOG_LEVEL=log_level.upper())
        self.journal_dir = settings.VAR_DIR / "journal"
        self.broker: EmbeddedBroker | None = None
        self.redis: EmbeddedRedis | None = None
        self.supervisor: Supervisor | None = None

    def run(self) -> None:
        """Run until stopped; raises the user errors above, ``PlatformAlreadyRunning`` or
        the embedded parts' ``ChildUnavailable``."""
        lock = PlatformLock(settings.VAR_DIR).acquire(port=self.port)
        try:
            for wanted in (self.port, self.read_port):
                if not port_free(wanted):
                    raise PortInUse(
                        f"port {wanted} is already in use: choose another, e.g. "
                        f"python3 dev.py run --port {self.port + 10}"
                    )
            # Stop cleanly on SIGTERM too (Ctrl-C arrives as KeyboardInterrupt in set-up).
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                self._run_until_stopped()
            except KeyboardInterrupt:
                self.say("interrupted during start-up")
            finally:
                self._stop_infrastructure()
                self.say("platform stopped")
        finally:
            lock.release()

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _run_until_stopped(self) -> None:
        self._start_infrastructure()
        restored = self._set_up(*self._after_a_crash())
        self.say(
            "ready: databases migrated, topics created"
            + (f", {restored} journaled records restored" if self.broker else "")
        )
        self.env.update(PORT=str(self.port), READ_API_PORT=str(self.read_port))
        self._supervise()
        if self.broker:
            self.journal_dir.mkdir(parents=True, exist_ok=True)
            (self.journal_dir / CLEAN_STOP).touch()

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

    def _stop_infrastructure(self) -> None:
        if self.redis:
            self.redis.stop()
        if self.broker:
            self.broker.stop()
        if self.broker or self.redis:
            settings.EMBEDDED_ENV_FILE.unlink(missing_ok=True)

    def _set_up(self, *options: str) -> int:
        """Run the set-up steps (all, or ``--topics-only``) in one process; returns how many
        journaled records were restored into a fresh embedded broker."""
        embedded = ["--journal", str(self.journal_dir), "--fresh-broker"] if self.broker else []
        output = self._run(
            [sys.executable, "-m", "eventplatform.embedded.setup", *embedded, *options]
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

    def _supervise(self) -> None:
        specs = read_procfile(settings.BASE_DIR / self.procfile)
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
            out=self.out,
            infrastructure=infrastructure,
            status_path=settings.PLATFORM_STATUS_FILE,
        )
        signal.signal(signal.SIGINT, self.supervisor.request_stop)
        signal.signal(signal.SIGTERM, self.supervisor.request_stop)
        self.say(
            f"\n  web        http://127.0.0.1:{self.port}/\n"
            f"  admin      http://127.0.0.1:{self.port}/admin/\n"
            f"  API docs   http://127.0.0.1:{self.port}/api/docs\n"
            f"  read API   http://127.0.0.1:{self.read_port}/api/installed-apps/...\n"
        )
        self.supervisor.run()

    def _run(self, argv: list[str]) -> str:
        """Run a set-up step quietly; its output is shown with -v 2, and its last line of
        errors names what failed."""
        result = subprocess.run(
            argv, cwd=settings.BASE_DIR, env=self.env, capture_output=True, text=True
        )
        if self.verbose:
            self.out.write(result.stdout + result.stderr)
        if result.returncode:
            errors = result.stderr.strip().splitlines() or ["(no output)"]
            raise SetupFailed(
                f"{' '.join(argv[2:])} failed with {result.returncode}: {errors[-1]}"
                + ("" if self.verbose else " (-v 2 shows its whole output)")
            )
        return result.stdout
