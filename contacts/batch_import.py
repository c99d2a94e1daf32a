"""Stage 3 of an import (the importer consumer): apply one batch exactly once."""

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from .events import ImportBatch
from .models import ImportedBatch, ImportJob, ImportRowError
from .progress import notify_batch, notify_completed
from .upsert import upsert_contacts
from .validation import CleanRow, InvalidRow, clean_row

logger = logging.getLogger("contacts")


def import_batch(*, batch: ImportBatch) -> None:
    """Apply one batch exactly once; must run inside the caller's transaction.

    The done-batch row, the upserts, the row errors, the counters and the notifications
    commit together: a redelivered batch finds its done-batch row and changes nothing.
    """
    owner_id = ImportJob.objects.filter(id=batch.job_id).values_list("owner_id", flat=True)
    owner_id = owner_id.first()
    if owner_id is None:
        logger.warning("batch of an unknown job skipped", extra={"job": str(batch.job_id)})
        return
    try:
        with transaction.atomic():
            ImportedBatch.objects.create(job_id=batch.job_id, batch_no=batch.batch_no)
    except IntegrityError:
        return  # already imported (a redelivery)

    clean: list[CleanRow] = []
    errors = [{"line": line, "reason": reason} for line, reason in batch.errors]
    for line, email, name, phone, company in batch.rows:
        try:
            clean.append(clean_row(line=line, email=email, name=name, phone=phone, company=company))
        except InvalidRow as error:
            errors.append({"line": line, "reason": str(error)})
    errors.sort(key=lambda e: e["line"])
    inserted = upsert_contacts(owner_id=owner_id, job_id=batch.job_id, rows=clean)
    ImportRowError.objects.bulk_create(
        ImportRowError(job_id=batch.job_id, line=e["line"], reason=e["reason"]) for e in errors
    )
    counts = {"imported": inserted, "updated": len(clean) - inserted, "failed": len(errors)}
    _record_batch(batch=batch, counts=counts, errors=errors)


def _record_batch(*, batch: ImportBatch, counts: dict[str, int], errors: list) -> None:
    # The job row is locked last and briefly: importers sharing a job upsert in parallel,
    # and serialise only here, so exactly one of them sees the final batch done.
    job = ImportJob.objects.select_for_update().get(id=batch.job_id)
    job.done_batches += 1
    job.imported += counts["imported"]
    job.updated += counts["updated"]
    job.failed += counts["failed"]
    job.progressed_at = timezone.now()
    fields = ["done_batches", "imported", "updated", "failed", "progressed_at"]
    notify_batch(job, batch_no=batch.batch_no, rows=batch.size, counts=counts, errors=errors)
    if job.total_batches is not None and job.done_batches == job.total_batches:
        job.completed_at = timezone.now()
        fields.append("completed_at")
        notify_completed(job)
    job.save(update_fields=fields)
