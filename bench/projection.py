"""Projector throughput against a raw consumer, side by side in one run.

50,000 ``SiteMetadataChanged`` events (about 5 apps each) are put in ``sites.metadata``
first. Then: a raw consumer that only polls and decodes them (the ceiling), and the
projector writing them into PostgreSQL through the consumer runtime (version-guarded bulk
upserts, offsets stored in the same transactions). Prints both rates and projector/raw.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sites \\
    PROJECTIONS_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_sites_proj \\
    .venv/bin/python -m bench.projection
"""

import random
import time
import uuid
from datetime import UTC, datetime

from bench.harness import Timer, benchmark_environment, empty_tables, report

EVENTS = 50_000
APPS = [f"app-{n}" for n in range(12)]


def site_events(count: int) -> list[tuple[bytes, bytes]]:
    """``count`` encoded ``SiteMetadataChanged`` events of new sites, as (key, value)."""
    from eventplatform.kafka.envelope import Event

    rng = random.Random(1)
    now = datetime.now(UTC).isoformat()
    events = []
    for _ in range(count):
        site_id = str(uuid.uuid4())
        event = Event(
            type="SiteMetadataChanged",
            data={
                "site_id": site_id,
                "version": 1,
                "name": "Site",
                "owner": "owner@example.com",
                "created_at": now,
                "updated_at": now,
                "apps": [
                    {"app_id": app, "installed_at": now, "settings": {}}
                    for app in sorted(rng.sample(APPS, rng.randint(3, 7)))
                ],
            },
        )
        events.append((site_id.encode(), event.encode()))
    return events


def send_site_events(events: list[tuple[bytes, bytes]]) -> None:
    """Put encoded ``events`` in ``sites.metadata`` and wait until the broker has them."""
    from eventplatform.kafka.config import topic_name
    from eventplatform.kafka.producer import get_producer
    from sites.topics import SITES_METADATA

    producer, topic = get_producer(), topic_name(SITES_METADATA)
    for key, value in events:
        producer.send(topic, key=key, value=value)
    producer.flush(timeout=120)


def produce(count: int) -> None:
    send_site_events(site_events(count))


def raw_consume(count: int) -> float:
    """Seconds to poll and decode ``count`` records with a bare consumer."""
    from kafka import KafkaConsumer, TopicPartition

    from eventplatform.kafka.config import client_options, topic_name
    from eventplatform.kafka.envelope import Event
    from sites.topics import SITES_METADATA

    consumer = KafkaConsumer(**client_options(), enable_auto_commit=False, max_poll_records=2000)
    topic = topic_name(SITES_METADATA)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    seen = 0
    with Timer() as timer:
        while seen < count:
            for records in consumer.poll(timeout_ms=500).values():
                for record in records:
                    Event.decode(record.value)
                seen += len(records)
    consumer.close()
    return timer.seconds


def project(count: int) -> float:
    """Seconds for the projector to project ``count`` records, from its assignment on."""
    from eventplatform.kafka.consumer import ConsumerRuntime
    from sites.projection.consumer import InstalledAppsProjector

    class TimedProjector(InstalledAppsProjector):
        started = None

        def on_assigned(self, partitions):
            self.started = self.started or time.perf_counter()

    projector = TimedProjector()
    ConsumerRuntime(projector).run(until=lambda runtime: runtime.stats.records >= count)
    return time.perf_counter() - projector.started


def reset_projection() -> None:
    """Empty the projection (the previous run left 300,000 rows)."""
    from eventplatform.models import ConsumerOffset
    from eventplatform.routers import PROJECTIONS
    from sites.projection.models import InstalledApp, ProjectedSite, ProjectionState

    empty_tables(InstalledApp, ProjectedSite, ProjectionState, ConsumerOffset, using=PROJECTIONS)


def main() -> None:
    with benchmark_environment():
        from django.db import connections

        from eventplatform.routers import PROJECTIONS
        from sites.projection.models import InstalledApp

        vendor = connections[PROJECTIONS].vendor
        reset_projection()
        with Timer() as produced:
            produce(EVENTS)
        raw_seconds = raw_consume(EVENTS)
        projector_seconds = project(EVENTS)
        rows = InstalledApp.objects.using(PROJECTIONS).count()
        raw_rate, projector_rate = EVENTS / raw_seconds, EVENTS / projector_seconds
        report(
            f"projection: {EVENTS:,} site events, {rows:,} installed-app rows ({vendor})",
            {
                "produce": f"{EVENTS / produced.seconds:,.0f} events/s",
                "raw poll+decode": f"{raw_rate:,.0f} events/s ({raw_seconds:.2f} s)",
                "projector": f"{projector_rate:,.0f} events/s ({projector_seconds:.2f} s)",
                "projector / raw": f"{projector_rate / raw_rate:.2f} (target >= 0.8)",
            },
        )


if __name__ == "__main__":
    main()
