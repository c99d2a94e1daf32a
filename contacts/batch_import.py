"""Stage 3 of an import (the importer consumer): apply batches exactly once.

An importer applies the several batches of one poll in one transaction. Importers sharing a
job work in parallel and serialise only at the end, on the job row, for as long as it takes
to add their counts and commit: the row is locked last, once per transaction, so the other
importer's upserts are never held up behind it.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from .events import ImportBatch
from .models import ImportedBatch, ImportJob, ImportRowError
from .progress import notify_batch, notify_completed
from .upsert import upsert_contacts
from .validation import CleanRow, InvalidRow, clean_row

logger = logging.getLogger("contacts")


@dataclass(frozen=True)
class _Applied:
    """What one batch did: its counts and row errors, told to the browser with the job's."""

    batch: ImportBatch
    counts: dict[str, int]
    errors: list[dict]


def import_batches(*, batches: list[ImportBatch]) -> None:
    """Apply each batch exactly once; must run inside the caller's transaction.

    Each batch's done-batch row, upserts and row errors, the job counters and the
    notifications commit together: a redelivered batch finds its done-batch row and changes
    nothing. A job that failed (its browser was told, say, that it stalled while the
    importers were down) is over: its late batches are skipped.
    """
    jobs = ImportJob.objects.filter(id__in={b.job_id for b in batches})
    live = {
        job_id: (owner_id, created_at)
        for job_id, owner_id, created_at in jobs.filter(failure="").values_list(
            "id", "owner_id", "created_at"
        )
    }
    for batch in batches:
        if batch.job_id not in live:
            logger.warning(
                "batch of an unknown or failed job skipped", extra={"job": str(batch.job_id)}
            )
    applied = [
        _apply(batch, owner_id=live[batch.job_id][0], job_created_at=live[batch.job_id][1])
        for batch in _claim([b for b in batches if b.job_id in live])
    ]
    ImportRowError.objects.bulk_create(
        ImportRowError(job_id=a.batch.job_id, line=e["line"], reason=e["reason"])
        for a in applied
        for e in a.errors
    )
    for job_id in sorted({a.batch.job_id for a in applied}):
        _record(job_id=job_id, applied=[a for a in applied if a.batch.job_id == job_id])


def _claim(batches: list[ImportBatch]) -> list[ImportBatch]:
    """Insert the done-batch rows in one statement; return the batches not imported before.

    A batch another importer holds uncommitted (redelivered during a rebalance) waits for
    that importer's commit here, then counts as imported. Rows go in one order, so two
    importers claiming the same batches cannot deadlock.
    """
    unique = {(b.job_id, b.batch_no): b for b in batches}
    if not unique:
        return []
    job_field = ImportedBatch._meta.get_field("job").target_field
    params: list = []
    for job_id, batch_no in sorted(unique):
        params += [job_field.get_db_prep_value(job_id, connection), batch_no]
    table = ImportedBatch._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(unique))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (job_id, batch_no) VALUES {values} "
            f"ON CONFLICT (job_id, batch_no) DO NOTHING RETURNING job_id, batch_no",
            params,
        )
        claimed = {(_as_uuid(job_id), batch_no) for job_id, batch_no in cursor.fetchall()}
    return [batch for key, batch in sorted(unique.items()) if key in claimed]


def _as_uuid(value) -> uuid.UUID:
    # PostgreSQL returns a UUID, SQLite the 32 hex digits it stores.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _apply(batch: ImportBatch, *, owner_id: int, job_created_at: datetime) -> _Applied:
    """Validate and upsert one claimed batch's rows."""
    clean: list[CleanRow] = []
    errors = [{"line": line, "reason": reason} for line, reason in batch.errors]
    for line, email, name, phone, company in batch.rows:
        try:
            clean.append(clean_row(line=line, email=email, name=name, phone=phone, company=company))
        except InvalidRow as error:
            errors.append({"line": line, "reason": str(error)})
    errors.sort(key=lambda e: e["line"])
    inserted = upsert_contacts(
        owner_id=owner_id, job_id=batch.job_id, job_created_at=job_created_at, rows=clean
    )
    counts = {"imported": inserted, "updated": len(clean) - inserted, "failed": len(errors)}
    return _Applied(batch=batch, counts=counts, errors=errors)


def _record(*, job_id: uuid.UUID, applied: list[_Applied]) -> None:
    """Add the batches to the job's counters and tell its browser; complete it if they were
    the last. The lock lets exactly one importer see the final batch done; it does not
    block the done-batch rows' key checks (NO KEY UPDATE), only the other counters."""
    job = ImportJob.objects.select_for_update(no_key=True).get(id=job_id)
    if job.failure:
        # Failed while these batches were being applied: the browser already heard the
        # last of it, so it is not told of them, nor that the job completed.
        return
    for item in applied:
        job.done_batches += 1
        for name, value in item.counts.items():
            setattr(job, name, getattr(job, name) + value)
        notify_batch(
            job,
            batch_no=item.batch.batch_no,
            rows=item.batch.size,
            counts=item.counts,
            errors=item.errors,
        )
    job.progressed_at = timezone.now()
    fields = ["done_batches", "imported", "updated", "failed", "progressed_at"]
    if job.total_batches is not None and job.done_batches == job.total_batches:
        job.completed_at = timezone.now()
        fields.append("completed_at")
        notify_completed(job)
    job.save(update_fields=fields)
