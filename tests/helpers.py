"""Small helpers shared by tests."""

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from playwright.sync_api import sync_playwright

from eventplatform.kafka.catch_up import read_to_end
from eventplatform.kafka.config import client_options, consumer_options
from eventplatform.kafka.topics import ensure_topics


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until truthy; fail the test with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(message or f"condition not met within {timeout}s")


def recreate_topic(topic: str) -> None:
    """Delete a physical topic and create the declared topics again: a new, empty log with
    a new id under the same name, as an operator's mistake or a rebuilt cluster leaves it."""
    admin = KafkaAdminClient(**client_options())
    try:
        admin.delete_topics([topic])
        wait_until(lambda: topic not in admin.list_topics(), message=f"{topic} not deleted")
    finally:
        admin.close()
    ensure_topics()


def read_topic(topic: str, *, expected: int | None = None, timeout_s: float = 20) -> list:
    """Every record of a physical topic from the beginning, by manual assignment.

    With ``expected``, reads until that many arrived (or the timeout). Without, reads to
    the end of the log by the platform's one rule (:mod:`eventplatform.kafka.catch_up`).
    """
    consumer = KafkaConsumer(**consumer_options(), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or {0}]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list = []

        def collect(_tp, batch):
            records.extend(batch)

        if expected is None:
            read_to_end(consumer, partitions, timeout_s=timeout_s, on_records=collect)
            return records
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


class RunningConsumer:
    """``with RunningConsumer(consumer) as runtime:`` runs it in a background thread.

    On exit the runtime is asked to stop and joined; ``error`` keeps the exception the run
    ended with, if any, for tests about failures that stop it.
    """

    def __init__(self, consumer, **options):
        from eventplatform.kafka.consumer import ConsumerRuntime

        options.setdefault("backoff_seconds", 0.01)
        self.runtime = ConsumerRuntime(consumer, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.runtime.run()
        except BaseException as error:  # noqa: BLE001 - kept for the test to inspect
            self.error = error

    def __enter__(self):
        self.thread.start()
        return self.runtime

    def __exit__(self, *exc) -> None:
        self.runtime.request_stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "runtime did not stop"


@contextlib.contextmanager
def serve_daphne(*, env: dict[str, str], log_path: Path):
    """Daphne serving the platform's ASGI application on a free port; yields the port."""
    from eventplatform.embedded.ports import free_port, wait_for_port

    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["eventplatform.asgi:application"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for_port("127.0.0.1", port, timeout=60), f"daphne did not start: {log_path}"
        yield port
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def chromium():
    """Debian's Chromium driven by Playwright (never a downloaded browser); yields it."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
