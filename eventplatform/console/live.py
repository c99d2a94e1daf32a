"""The process's sampler: one thread taking a snapshot every second while anyone watches.

Sampling runs in a thread of its own, not in the request threads: a snapshot asks the
broker and the databases several questions, and the web process must keep answering
meanwhile. Every open console shares the same snapshots. The thread starts with the first
console opened in the process and keeps sampling (the charts need the history) until no
console has looked for ``IDLE_STOP_SECONDS``.
"""

import logging
import threading
import time

from django.db import connections

from .snapshot import Collector

logger = logging.getLogger("eventplatform.console")

INTERVAL_SECONDS = 1.0
IDLE_STOP_SECONDS = 15 * 60


class Sampler:
    def __init__(self, interval: float = INTERVAL_SECONDS):
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: dict | None = None
        self.sequence = 0
        self._watched_at = time.monotonic()

    def watch(self) -> None:
        """Say someone is looking; starts the thread if it is not running."""
        self._watched_at = time.monotonic()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="console-sampler", daemon=True
                )
                self._thread.start()

    def latest(self) -> tuple[int, dict | None]:
        """``(sequence, snapshot)`` of the newest snapshot (``None`` before the first)."""
        with self._lock:
            return self.sequence, self._latest

    def refresh_soon(self) -> None:
        """Take the next snapshot now (after an action changed what the console shows)."""
        self._wake.set()

    def _run(self) -> None:
        collector = Collector()
        try:
            while time.monotonic() - self._watched_at < IDLE_STOP_SECONDS:
                started = time.monotonic()
                try:
                    snapshot = collector.collect()
                except Exception:  # the thread must survive anything; the next try may work
                    logger.exception("console snapshot failed")
                    snapshot = None
                if snapshot is not None:
                    with self._lock:
                        self.sequence += 1
                        snapshot["sequence"] = self.sequence
                        self._latest = snapshot
                self._wake.wait(max(0.0, self.interval - (time.monotonic() - started)))
                self._wake.clear()
        finally:
            collector.close()
            connections.close_all()


sampler = Sampler()
