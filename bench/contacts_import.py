"""100,000 CSV rows from ``POST /api/contacts/imports`` to ``completed``, against a baseline
that bulk-inserts the same rows straight into the same database in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_contacts \\
    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.contacts_import
"""

import os
import time

from bench.harness import Timer, benchmark_environment, report
from bench.pipeline import celery_queue, running

ROWS = int(os.environ.get("BENCH_ROWS", "100000"))
IMPORTERS = int(os.environ.get("BENCH_IMPORTERS", "2"))


def csv_content() -> bytes:
    lines = ["email,name,phone,company"]
    lines += [
        f"user{n}@example.com,Person {n},+1 555 {n:06d},Company {n % 97}" for n in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def baseline(owner) -> float:
    from contacts.models import Contact

    rows = [
        Contact(
            owner=owner,
            email=f"user{n}@example.com",
            name=f"Person {n}",
            phone=f"+1 555 {n:06d}",
            company=f"Company {n % 97}",
        )
        for n in range(ROWS)
    ]
    with Timer() as timer:
        Contact.objects.bulk_create(rows, batch_size=5000)
    return timer.seconds


def pipeline(owner, content: bytes) -> float:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    from contacts.models import ImportJob
    from eventplatform.notifications.tokens import issue_channel

    client = Client()
    client.force_login(owner)
    channel = issue_channel(user_id=owner.pk)
    with Timer() as timer:
        response = client.post(
            "/api/contacts/imports",
            {"file": SimpleUploadedFile("bench.csv", content), "channel": channel},
        )
        assert response.status_code == 202, response.content
        job_id = response.json()["job_id"]
        while not ImportJob.objects.filter(id=job_id, completed_at__isnull=False).exists():
            time.sleep(0.05)
    job = ImportJob.objects.get(id=job_id)
    assert job.imported == ROWS, f"imported {job.imported} of {ROWS}"
    return timer.seconds


def main() -> None:
    queue = celery_queue()
    with benchmark_environment():
        from django.contrib.auth import get_user_model

        from eventplatform.celery import app

        app.conf.task_default_queue = queue
        users = get_user_model().objects
        suffix = time.time_ns()
        content = csv_content()
        base_seconds = baseline(users.create_user(f"bench-base-{suffix}"))
        with running(
            [
                "celery",
                "-A",
                "eventplatform",
                "worker",
                "--pool",
                "solo",
                "-Q",
                queue,
                "--loglevel",
                "INFO",
            ],
            *[["import_contacts"] for _ in range(IMPORTERS)],
            ["relay_outbox"],
        ):
            seconds = pipeline(users.create_user(f"bench-pipe-{suffix}"), content)
        base_rate, rate = ROWS / base_seconds, ROWS / seconds
        report(
            f"contacts import: {ROWS:,} rows, {IMPORTERS} importers",
            {
                "baseline bulk insert": f"{base_seconds:.2f} s  ({base_rate:,.0f} rows/s)",
                "POST → completed": f"{seconds:.2f} s  ({rate:,.0f} rows/s)",
                "ratio (pipeline / baseline)": f"{rate / base_rate:.2f}  (target ≥ 0.7)",
            },
        )


if __name__ == "__main__":
    main()
