"""The Celery worker killed as a whole, twice, while it splits a 300,000-row file.

A replacement worker is started at once each time, as any process manager would; the
import still ends with exact totals (no batch lost, none twice) within two minutes of the
last kill.
"""

import os
import signal
import subprocess
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from contacts.models import Contact, ImportJob
from eventplatform.notifications.tokens import issue_channel
from tests.contacts.conftest import CELERY_QUEUE, contacts_csv
from tests.helpers import wait_until

from .conftest import celery_worker_command

pytestmark = pytest.mark.django_db(transaction=True)

ROWS, BAD_EVERY = 300_000, 10_000
# A split that made no progress for this long is queued again by the importer's sweeper,
# which looks every CONTACTS_SWEEP_SECONDS (the platform's defaults are 60 s and 30 s;
# shorter here to keep the suite quick).
REDISPATCH_S = 15


class Workers:
    """Celery workers in process groups of their own, so a kill takes the whole worker."""

    def __init__(self, env: dict[str, str], logs):
        self.env = {**env, "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE}
        self.logs = logs
        self.current: subprocess.Popen | None = None
        self.started = 0

    def start(self) -> None:
        self.started += 1
        with open(self.logs / f"worker-{self.started}.log", "wb") as log:
            self.current = subprocess.Popen(
                celery_worker_command(
                    CELERY_QUEUE, "--pool", "prefork", "--concurrency", "1", "--loglevel", "INFO"
                ),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.current.pid, signal.SIGKILL)
        self.current.wait()

    def stop(self) -> None:
        if self.current is not None and self.current.poll() is None:
            self.kill()


def _produced(job: ImportJob) -> tuple[int, int | None]:
    job.refresh_from_db()
    return job.produced_batches, job.total_batches


def _splitting(job: ImportJob, more_than: int) -> bool:
    produced, total = _produced(job)
    return produced > more_than and (total is None or produced < total)


def test_a_worker_killed_twice_mid_split_still_imports_every_row_once(
    kafka, spawn_manage, subprocess_env, tmp_path
):
    user = get_user_model().objects.create_user("splitter")
    client = Client()
    client.force_login(user)
    # The importer's sweeper queues a silent split again, on the workers' queue.
    spawn_manage(
        "import_contacts",
        env={
            "CONTACTS_SPLIT_REDISPATCH_SECONDS": str(REDISPATCH_S),
            "CONTACTS_SWEEP_SECONDS": "2",
            "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE,
        },
    )
    spawn_manage("relay_outbox")
    workers = Workers(subprocess_env, tmp_path)
    workers.start()
    try:
        upload = SimpleUploadedFile("big.csv", contacts_csv(ROWS, bad_every=BAD_EVERY))
        answer = client.post(
            "/api/contacts/imports", {"file": upload, "channel": issue_channel(user_id=user.pk)}
        )
        assert answer.status_code == 202, answer.content
        job = ImportJob.objects.get(id=answer.json()["job_id"])

        progress_at_kill = []
        for _ in range(2):
            since = progress_at_kill[-1] if progress_at_kill else 0
            wait_until(lambda s=since: _splitting(job, s), timeout=120, interval=0.01)
            workers.kill()
            progress_at_kill.append(_produced(job)[0])
            workers.start()  # the replacement
        last_kill = time.monotonic()

        def completed() -> bool:
            job.refresh_from_db()
            return job.completed_at is not None or bool(job.failure)

        wait_until(completed, timeout=120, interval=0.5, message="not done 2 min after the kill")
    finally:
        workers.stop()

    assert time.monotonic() - last_kill < 120
    bad = ROWS // BAD_EVERY
    assert (job.failure, job.total_rows, job.imported, job.updated, job.failed) == (
        "",
        ROWS,
        ROWS - bad,
        0,
        bad,
    )
    assert job.done_batches == job.produced_batches == job.total_batches
    assert 0 < progress_at_kill[0] < progress_at_kill[1] < job.total_batches
    assert Contact.objects.filter(owner=user).count() == ROWS - bad
