"""What an import tells its browser channel: the four progress messages, sent via the outbox.

Every message is sent inside the transaction that makes it true, so a browser never hears
of a state the database does not hold:

- ``planned`` once the whole file was read (totals, ignored columns);
- ``batch`` per imported batch (its counts and row errors);
- ``completed`` exactly once, with the final totals;
- ``failed`` when the file cannot be imported (nothing was), the import stalled or its split
  failed on an unexpected error: why, and how many rows were processed before it stopped.
  Nothing follows it: a failed job's late batches are skipped, so that count is final.
"""

import uuid
from typing import Any

from django.db import transaction
from django.utils import timezone

from eventplatform.notifications.services import notify_in_transaction

from .models import ImportJob


def notify_planned(job: ImportJob) -> None:
    notify_in_transaction(
        job.channel,
        {
            "type": "planned",
            "job_id": str(job.id),
            "file": job.original_name,
            "total_rows": job.total_rows,
            "total_batches": job.total_batches,
            "ignored_columns": job.ignored_columns,
        },
    )


def notify_batch(
    job: ImportJob, *, batch_no: int, rows: int, counts: dict[str, int], errors: list
) -> None:
    message: dict[str, Any] = {
        "type": "batch",
        "job_id": str(job.id),
        "batch_no": batch_no,
        "rows": rows,
        **counts,
        "errors": errors,
    }
    notify_in_transaction(job.channel, message)


def notify_completed(job: ImportJob) -> None:
    notify_in_transaction(
        job.channel,
        {
            "type": "completed",
            "job_id": str(job.id),
            "total_rows": job.total_rows,
            "imported": job.imported,
            "updated": job.updated,
            "failed": job.failed,
            "ignored_columns": job.ignored_columns,
        },
    )


def fail_import(*, job_id: uuid.UUID, reason: str) -> None:
    """Mark an unfinished job failed with ``reason`` and tell its browser (once)."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(id=job_id)
        if job.failure or job.completed_at:
            return
        job.failure, job.failed_at = reason, timezone.now()
        job.save(update_fields=["failure", "failed_at"])
        notify_in_transaction(
            job.channel,
            {
                "type": "failed",
                "job_id": str(job.id),
                "reason": reason,
                "processed_rows": job.processed_rows,
            },
        )
