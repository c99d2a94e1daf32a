"""Two importers share one large job; one is SIGKILLed mid-import and restarted."""

import signal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact, ImportedBatch, ImportJob
from eventplatform.kafka.envelope import Event
from eventplatform.models import OutboxEvent
from tests.helpers import wait_until

from .conftest import contacts_csv

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 30_000  # 60 batches


def assigned(process) -> bool:
    return "partitions assigned" in Path(process.log_path).read_text()


def job_messages(job_id: str) -> list[dict]:
    rows = OutboxEvent.objects.filter(topic="notifications").order_by("id")
    messages = [Event.decode(bytes(r.value)).data["message"] for r in rows]
    return [m for m in messages if m["job_id"] == job_id]


def test_sigkilled_importer_loses_nothing_and_applies_nothing_twice(
    pipeline, spawn_manage, user, channel, client_for
):
    first = pipeline["importer"]
    second = spawn_manage("import_contacts")
    wait_until(lambda: assigned(first) and assigned(second), timeout=30)
    content = contacts_csv(ROWS, bad_every=1000)
    response = client_for(user).post(
        "/api/contacts/imports",
        {"file": SimpleUploadedFile("big.csv", content), "channel": channel},
    )
    assert response.status_code == 202
    job_id = response.json()["job_id"]

    def done() -> int:
        return ImportJob.objects.get(id=job_id).done_batches

    wait_until(lambda: done() >= 3, timeout=60, message="import never started")
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = done()
    spawn_manage("import_contacts")
    wait_until(
        lambda: ImportJob.objects.filter(id=job_id, completed_at__isnull=False).exists(),
        timeout=120,
        message="import never completed after the kill",
    )

    assert killed_at < 60, "the kill landed after the import finished"
    job = ImportJob.objects.get(id=job_id)
    bad = ROWS // 1000
    assert (job.done_batches, job.imported, job.updated, job.failed) == (60, ROWS - bad, 0, bad)
    assert ImportedBatch.objects.filter(job_id=job_id).count() == 60
    assert Contact.objects.filter(owner=user).count() == ROWS - bad
    messages = job_messages(job_id)
    assert [m["type"] for m in messages].count("completed") == 1
    batch_numbers = sorted(m["batch_no"] for m in messages if m["type"] == "batch")
    assert batch_numbers == list(range(60))
    assert messages[-1]["imported"] == ROWS - bad
