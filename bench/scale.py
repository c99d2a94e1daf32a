"""Throughput of the projection and of the contacts import with 1, 2 and 4 processes.

Both run as production scales them: copies of ``manage.py consume NAME`` in one consumer
group, on a topic with at least as many partitions as processes.

Each process count runs on topics and consumer groups of its own (a fresh topic prefix),
as a new deployment would: a group whose members have just left is not what is measured.
(The embedded broker keeps such a group waiting for its departed members until the
rebalance timeout, minutes; see bench/README.md.)

- Projection: for each process count the projection is emptied, its stored offsets too,
  and the projectors started; once every one holds partitions, ``--events`` site events
  (encoded beforehand) are sent to ``sites.metadata``.
- Import: for each process count the importers are started; once every one holds
  partitions, one import job of ``--rows`` rows for a new user's empty address book is
  split into ``contacts.import-jobs`` (by the split task's own function, run here).

The work is given once the last process of the group holds partitions, while every
process is held still (SIGSTOP), so it waits for them in full, as a backlog does; the rate
is measured from their release to the moment everything is applied. Starting Python and
joining the group are start-up costs, printed apart, not throughput. (Given to running
processes instead, the work would be taken as it trickles in, in small batches, by
processes that take the two cores from the writer of the work: the rate would be the
writer's, and would fall with more processes.)

Each count's rate is printed with its ratio to the 1-process rate, and with how many
database sessions were waiting on a lock, on average, meanwhile (PostgreSQL): processes
that queue behind one another's locks cannot add throughput. On 2 cores the curve is
expected to flatten past 2 processes; it must not fall.

    .venv/bin/python -m bench.scale [--events 30000] [--rows 60000] [--processes 1,2,4]
"""

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.harness import benchmark_environment, new_topic_prefix, report
from bench.pipeline import paused, running


@dataclass(frozen=True)
class Run:
    """One process count's figures."""

    processes: int
    start_seconds: float  # launch → the last process holds partitions
    applied: int  # records or rows applied once the group was complete
    seconds: float  # from then until everything was applied
    lock_waiters: float | None  # sessions waiting on a lock meanwhile, on average

    @property
    def rate(self) -> float:
        return self.applied / self.seconds


def lock_waiters(database: str) -> int | None:
    """Sessions of ``database`` waiting on a lock right now (None if not PostgreSQL)."""
    from django.db import connections

    connection = connections[database]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def measure(
    command: list[str],
    processes: int,
    *,
    start_work: Callable[[], None],
    progress: Callable[[], int],
    total: int,
    database: str,
) -> Run:
    """Run ``processes`` copies of ``command``; once every one holds partitions, call
    ``start_work`` and wait until ``progress()`` reaches ``total``."""
    launched = time.perf_counter()
    waiters: list[int] = []
    with running(*[command for _ in range(processes)]) as members:
        # Given before the group is complete, the work would mostly be done by the first
        # member while the others join (on Apache Kafka, all of it, with 4 importers).
        settled = time.perf_counter()
        before = progress()
        # Given while they run, the work would be taken as it trickles in, and the
        # members would compete for the two cores with the writer of the work.
        with paused(members):
            start_work()
        given = time.perf_counter()
        while progress() < total:
            sample = lock_waiters(database)
            if sample is not None:
                waiters.append(sample)
            time.sleep(0.05)
        finished = time.perf_counter()
    mean_waiters = sum(waiters) / len(waiters) if waiters else None
    return Run(processes, settled - launched, total - before, finished - given, mean_waiters)


def fresh_topics() -> None:
    """Point this process, and the processes it starts next, at new topics and groups."""
    from django.conf import settings

    from eventplatform.kafka.topics import ensure_topics

    settings.KAFKA_TOPIC_PREFIX = new_topic_prefix()
    ensure_topics()


def partitions_of(topic: str) -> int:
    from eventplatform.kafka.topics import declared_topics

    return next(spec.partitions for spec in declared_topics() if spec.name == topic)


def scale_projection(events: int, counts: list[int]) -> list[Run]:
    from bench.projection import reset_projection, send_site_events, site_events
    from eventplatform.routers import PROJECTIONS
    from sites.projection.generations import live_generation
    from sites.projection.models import ProjectedSite

    sites = ProjectedSite.objects.using(PROJECTIONS)
    # Encoded beforehand: the processes are held still while the events are sent, and
    # that should take as little of their session timeout as it can.
    encoded = site_events(events)
    runs = []
    for count in counts:
        fresh_topics()
        reset_projection()
        live_generation()  # the state row, created here rather than raced for by the processes
        runs.append(
            measure(
                ["consume", "project_installed_apps"],
                count,
                start_work=lambda: send_site_events(encoded),
                progress=sites.count,
                total=events,
                database=PROJECTIONS,
            )
        )
    return runs


def csv_content(rows: int) -> bytes:
    lines = ["email,name,phone,company"]
    lines += [
        f"user{n}@example.com,Person {n},+1 555 {n:06d},Company {n % 97}" for n in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def scale_import(rows: int, counts: list[int]) -> list[Run]:
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.db.models import F

    from contacts.models import ImportJob
    from contacts.split import split_import_job
    from eventplatform.notifications.tokens import issue_channel

    content = csv_content(rows)
    runs = []
    for count in counts:
        fresh_topics()
        owner = get_user_model().objects.create_user(f"bench-scale-{time.time_ns()}")
        job = ImportJob.objects.create(
            owner=owner,
            file=ContentFile(content, name="scale.csv"),
            original_name="scale.csv",
            channel=issue_channel(user_id=owner.pk),
        )
        job_rows = ImportJob.objects.filter(id=job.id).annotate(
            rows=F("imported") + F("updated") + F("failed")
        )

        def imported(job_rows=job_rows) -> int:
            return job_rows.values_list("rows", flat=True).get()

        runs.append(
            measure(
                ["consume", "import_contacts"],
                count,
                start_work=lambda job=job: split_import_job(job_id=job.id),
                progress=imported,
                total=rows,
                database="default",
            )
        )
        job.refresh_from_db()
        assert job.completed_at and job.imported == rows, f"imported {job.imported} of {rows}"
    return runs


def print_runs(title: str, runs: list[Run], unit: str) -> None:
    base = runs[0].rate
    rows = {}
    for run in runs:
        waits = "" if run.lock_waiters is None else f"; {run.lock_waiters:.2f} waiting on a lock"
        rows[f"{run.processes} process{'es' if run.processes > 1 else ''}"] = (
            f"{run.rate:,.0f} {unit}/s  ({run.rate / base:.2f} × 1 process; "
            f"{run.applied:,} in {run.seconds:.2f} s after {run.start_seconds:.1f} s of start-up"
            f"{waits})"
        )
    report(title, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Several seconds of work for one process on a fast 2-core machine: with 30,000 events
    # a count took about 2 s there, and one hiccup could put 2 processes below 1.
    parser.add_argument("--events", type=int, default=90_000, help="site events to project")
    parser.add_argument("--rows", type=int, default=180_000, help="CSV rows per import")
    parser.add_argument("--processes", default="1,2,4", help="process counts, comma-separated")
    parser.add_argument("--skip", choices=["projection", "import"], help="measure only the other")
    options = parser.parse_args()
    counts = [int(count) for count in options.processes.split(",")]
    with benchmark_environment():
        from contacts.topics import IMPORT_JOBS
        from sites.topics import SITES_METADATA

        for topic in (SITES_METADATA, IMPORT_JOBS.name):
            if partitions_of(topic) < max(counts):
                print(f"note: {topic} has {partitions_of(topic)} partitions; more processes idle")
        if options.skip != "projection":
            runs = scale_projection(options.events, counts)
            print_runs(f"projection: {options.events:,} site events", runs, "events")
        if options.skip != "import":
            runs = scale_import(options.rows, counts)
            print_runs(f"contacts import: {options.rows:,} rows per job", runs, "rows")


if __name__ == "__main__":
    main()
