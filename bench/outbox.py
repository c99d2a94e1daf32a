"""Events per second through outbox → relay → broker, against a raw producer, in one run.

    .venv/bin/python -m bench.outbox [--events 20000]

The raw baseline sends the same encoded events straight to a topic with the platform's
producer and waits for every acknowledgement. The outbox pipeline writes the events in
transactions of 500 rows while a ``relay_outbox`` process (as in production) sends them;
its clock runs from the first write until the last row is marked sent. Also prints how soon
a running relay sends a single new row (wake-up latency).
"""

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Timer, benchmark_environment, percentile, report

ROOT = Path(__file__).resolve().parent.parent


def _site_topic() -> str:
    """The topic site changes travel on (imported once Django is set up)."""
    from sites.topics import SITES_METADATA

    return SITES_METADATA


def _events(count: int):
    from eventplatform.kafka.envelope import Event

    padding = "x" * 120  # ~200-byte values, a typical small event
    return [Event(type="BenchEvent", data={"n": n, "pad": padding}) for n in range(count)]


def raw_producer_rate(events) -> float:
    from eventplatform.kafka.config import topic_name
    from eventplatform.kafka.producer import send, wait_all

    with Timer() as timer:
        futures = [
            send(topic_name("bench.raw"), key=str(e.data["n"] % 64), value=e.encode())
            for e in events
        ]
        wait_all(futures, timeout=120)
    return len(events) / timer.seconds


def _unsent() -> int:
    from eventplatform.models import OutboxEvent

    return OutboxEvent.objects.filter(sent_at__isnull=True).count()


def outbox_rate(events) -> tuple[float, list[float]]:
    from django.db import transaction

    from eventplatform.models import OutboxEvent
    from eventplatform.outbox import publish

    OutboxEvent.objects.all().delete()
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wake_ups = []
        for _ in range(55):  # the first rows wait for the relay to start: not counted below
            with transaction.atomic():
                row = publish(_site_topic(), "wake", _events(1)[0])
            while OutboxEvent.objects.filter(pk=row.pk, sent_at__isnull=True).exists():
                time.sleep(0.002)
            sent = OutboxEvent.objects.get(pk=row.pk)
            wake_ups.append((sent.sent_at - sent.created_at).total_seconds() * 1000)
        with Timer() as timer:
            for start in range(0, len(events), 500):
                with transaction.atomic():
                    OutboxEvent.objects.bulk_create(
                        OutboxEvent(
                            topic=_site_topic(), key=str(e.data["n"] % 64), value=e.encode()
                        )
                        for e in events[start : start + 500]
                    )
            while _unsent():
                time.sleep(0.01)
        return len(events) / timer.seconds, wake_ups[5:]
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    with benchmark_environment():
        from django.db import connection

        from eventplatform.kafka.topics import declare, ensure_topics

        ensure_topics([declare("bench.raw", partitions=6, dead_letter=False)])
        events = _events(args.events)
        raw = raw_producer_rate(events)
        through_outbox, wake_ups = outbox_rate(events)
        report(
            f"outbox → relay → broker, {args.events:,} events, database: {connection.vendor}",
            {
                "raw producer": f"{raw:,.0f} events/s",
                "outbox pipeline": f"{through_outbox:,.0f} events/s",
                "ratio outbox/raw": f"{through_outbox / raw:.2f}",
                "relay wake-up p50": f"{percentile(wake_ups, 50):.1f} ms",
                "relay wake-up p99": f"{percentile(wake_ups, 99):.1f} ms",
            },
        )


if __name__ == "__main__":
    main()
