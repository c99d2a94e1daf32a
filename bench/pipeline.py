"""The consumer pipeline in benchmarks: its processes, and the runtime's own cost.

:func:`running` starts pipeline processes beside a benchmark and stops them after it.

Run as a module, it measures what the consumer runtime itself costs: 50,000
``SiteMetadataChanged`` events are put in ``sites.metadata``, then read by a raw consumer
that only polls and decodes them (the ceiling, as in ``bench.projection``), and by the
runtime running a consumer declared like the projector (same batch size, a transaction on
the projections database with its offsets stored in it, group commits) whose handler does
nothing. Runtime/raw is the share of the ceiling left to a handler; what the projector
loses beyond it is its own database work.

    .venv/bin/python -m bench.pipeline
"""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.harness import Timer, benchmark_environment, report

ROOT = Path(__file__).resolve().parent.parent
# What each kind of process logs once it can do its work.
MARKERS = {
    "celery": "ready.",
    "consume": "partitions assigned",
    "import_contacts": "partitions assigned",
    "relay_notifications": "partitions assigned",
}


@contextlib.contextmanager
def running(*commands: list[str]):
    """Start each command (``manage.py`` arguments, or ``["celery", ...]``); wait until
    consumers have partitions and the worker is ready; SIGTERM all on exit. Yields the
    processes."""
    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    processes = []
    for index, command in enumerate(commands):
        if command[0] == "celery":
            argv = [str(ROOT / ".venv/bin/celery"), *command[1:]]
        else:
            argv = [sys.executable, str(ROOT / "manage.py"), *command]
        log = open(logs / f"{index}-{command[0]}.log", "wb")  # noqa: SIM115
        processes.append(
            (
                command,
                subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
                log.name,
            )
        )
    try:
        deadline = time.monotonic() + 60
        for command, _, log_path in processes:
            marker = MARKERS.get(command[0])
            while marker and marker not in Path(log_path).read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{command} did not start; see {log_path}")
                time.sleep(0.1)
        yield [process for _, process, _ in processes]
    finally:
        for _, process, _ in processes:
            process.send_signal(signal.SIGTERM)
        for _, process, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def paused(processes: list[subprocess.Popen]):
    """Hold ``processes`` still (SIGSTOP) for the block, so work given to them meanwhile
    waits for them in full instead of being picked up piece by piece. Far shorter than a
    group's session timeout, so no member is taken for dead."""
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)


def celery_queue() -> str:
    """A queue of this run alone, set for this process and the worker it starts."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    os.environ["CELERY_TASK_DEFAULT_QUEUE"] = queue
    return queue


EVENTS = 50_000
#: Each side is measured this many times, alternately; the best of each is compared, so a
#: burst of load on a shared machine does not decide the ratio.
PASSES = 3


def runtime_with_noop_handler(count: int, *, name: str) -> tuple[float, int]:
    """Seconds for the runtime to take ``count`` records through a handler that does
    nothing, from its assignment on, and the number of batches it made of them."""
    from eventplatform.kafka.consumer import BatchConsumer, ConsumerRuntime
    from eventplatform.kafka.envelope import Event
    from eventplatform.routers import PROJECTIONS
    from sites.projection.consumer import InstalledAppsProjector

    class NoopConsumer(BatchConsumer):
        topics = InstalledAppsProjector.topics
        database = PROJECTIONS
        store_offsets_in_database = True
        max_batch_size = InstalledAppsProjector.max_batch_size
        started = None

        def decode(self, record):
            return Event.decode(record.value)  # what the raw consumer does per record

        def handle_batch(self, messages) -> None:
            pass

        def on_assigned(self, partitions) -> None:
            self.started = self.started or time.perf_counter()

    consumer = NoopConsumer()
    consumer.name = name  # a group of its own: each pass starts from the beginning
    runtime = ConsumerRuntime(consumer)
    runtime.run(until=lambda runtime: runtime.stats.records >= count)
    return time.perf_counter() - consumer.started, runtime.stats.batches


def main() -> None:
    from bench.projection import produce, raw_consume

    with benchmark_environment():
        with Timer() as produced:
            produce(EVENTS)
        raw, runtime = [], []
        for number in range(PASSES):
            raw.append(raw_consume(EVENTS))
            runtime.append(runtime_with_noop_handler(EVENTS, name=f"bench-noop-{number}"))
        raw_seconds = min(raw)
        runtime_seconds, batches = min(runtime)
        raw_rate, runtime_rate = EVENTS / raw_seconds, EVENTS / runtime_seconds
        report(
            f"consumer runtime: {EVENTS:,} site events, a handler that does nothing "
            f"(best of {PASSES})",
            {
                "produce": f"{EVENTS / produced.seconds:,.0f} events/s",
                "raw poll+decode": (
                    f"{raw_rate:,.0f} events/s ({raw_seconds:.2f} s; "
                    + ", ".join(f"{s:.2f}" for s in raw)
                    + ")"
                ),
                "runtime": (
                    f"{runtime_rate:,.0f} events/s ({runtime_seconds:.2f} s in {batches} "
                    "batches; " + ", ".join(f"{s:.2f}" for s, _ in runtime) + ")"
                ),
                "runtime / raw": (
                    f"{runtime_rate / raw_rate:.2f} (the projector's minimum is 0.8, "
                    "its database work included)"
                ),
            },
        )


if __name__ == "__main__":
    main()
