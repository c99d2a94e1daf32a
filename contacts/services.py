"""Contacts writes: accept an upload, split it into Kafka batches, import one batch.

The browser learns everything from its notification channel: ``planned`` (totals),
``batch`` (per batch: counts and row errors), ``completed`` (totals, exactly once) or
``failed`` (why the file could not be read; nothing imported).
"""

import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all
from eventplatform.notifications.services import notify_in_transaction
from eventplatform.notifications.tokens import verify_channel
from eventplatform.outages import ServiceUnavailable

from .csv_reader import DEFAULT_MAX_LINE_BYTES, FIELDS, CsvFile, Row, UnreadableFile
from .events import TOPIC, ImportBatch
from .models import Contact, ImportedBatch, ImportJob
from .validation import CleanRow, InvalidRow, clean_row

logger = logging.getLogger("contacts")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
BATCH_ROWS = 500
# Keeps a record well under Kafka's default 1 MB limit however long the rows are.
BATCH_BYTES = 256 * 1024
#: Batches acknowledged between two records of the split's progress.
SPLIT_CHUNK_BATCHES = 20


class UploadTooLarge(Exception):
    """The file is over ``CONTACTS_IMPORT_MAX_BYTES``."""


class ImportsUnavailable(ServiceUnavailable):
    """The task queue cannot take the job now; nothing was stored, try again later."""


def max_upload_bytes() -> int:
    return getattr(settings, "CONTACTS_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)


# -- upload --------------------------------------------------------------------------------


def create_import_job(*, owner, upload: UploadedFile, channel: str | None) -> ImportJob:
    """Check size and channel, store the file, record the job, queue the split task.

    Atomic: the task is queued inside the job's transaction, so either both happen or
    :class:`ImportsUnavailable` is raised and no job exists. (A task queued for a job whose
    commit then failed finds no job and ends.) Raises :class:`UploadTooLarge` or
    ``ChannelRefused`` too; never reads the file's content.
    """
    limit = max_upload_bytes()
    if upload.size > limit:
        raise UploadTooLarge(f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes")
    verify_channel(token=channel, user_id=owner.pk)
    from .tasks import split_contacts_import

    with transaction.atomic():
        job = ImportJob.objects.create(
            owner=owner,
            file=upload,
            original_name=(upload.name or "")[:255],
            channel=channel,
            progressed_at=timezone.now(),
        )
        try:
            split_contacts_import.delay(str(job.id))
        except Exception as error:  # kombu wraps the broker's errors in its own types
            logger.warning("import not queued", extra={"job": str(job.id), "error": repr(error)})
            raise ImportsUnavailable(
                "imports cannot be queued right now (the task queue is unreachable)"
            ) from error
    return job


# -- split (the Celery task) ---------------------------------------------------------------


def _batches(csv_file: CsvFile) -> Iterator[list[Row]]:
    batch, size = [], 0
    for row in csv_file.rows():
        batch.append(row)
        size += sum(len(v) for v in row.values.values()) + len(row.error) + 16
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _open(job: ImportJob) -> CsvFile:
    max_line = getattr(settings, "CONTACTS_IMPORT_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)
    return CsvFile(job.file.open("rb"), max_line_bytes=max_line)


def _plan(job: ImportJob) -> tuple[int, int, list[str]]:
    """Read the whole file once: rows, batches and ignored columns, or UnreadableFile."""
    csv_file = _open(job)
    try:
        rows = batches = 0
        for batch in _batches(csv_file):
            rows += len(batch)
            batches += 1
    finally:
        job.file.close()
    if rows == 0:
        raise UnreadableFile("the file has a header row but no data rows")
    return rows, batches, csv_file.layout.ignored


def split_import_job(*, job_id: uuid.UUID | str) -> None:
    """Check the whole file, notify ``planned``, then produce its batches.

    Safe to run again (the task is acknowledged late): ``planned`` is recorded once, and
    batches produced twice are imported once.
    """
    job = ImportJob.objects.filter(id=job_id).first()
    if job is None or job.failure or job.completed_at:
        return
    try:
        total_rows, total_batches, ignored = _plan(job)
    except (UnreadableFile, FileNotFoundError) as error:
        reason = str(error) if isinstance(error, UnreadableFile) else "the upload was lost"
        _fail(job_id=job.id, reason=reason)
        return
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(id=job.id)
        if locked.total_batches is None:
            locked.total_rows, locked.total_batches = total_rows, total_batches
            locked.progressed_at = timezone.now()
            locked.save(update_fields=["total_rows", "total_batches", "progressed_at"])
            notify_in_transaction(
                job.channel,
                {
                    "type": "planned",
                    "job_id": str(job.id),
                    "file": job.original_name,
                    "total_rows": total_rows,
                    "total_batches": total_batches,
                    "ignored_columns": ignored,
                },
            )
    # Batches go out only after ``planned`` is committed, so a batch can never be counted
    # before its job knows how many batches make it complete.
    _produce_batches(job_id=job.id)


def _produce_batches(*, job_id: uuid.UUID) -> None:
    """Produce the job's batches from where an earlier run got to (at least once each).

    Progress is recorded after each chunk is acknowledged, so a split killed at any point
    resumes from its last chunk; a batch produced twice is imported once.
    """
    job = ImportJob.objects.get(id=job_id)
    start = job.produced_batches
    csv_file = _open(job)
    try:
        futures, number = [], -1
        for number, rows in enumerate(_batches(csv_file)):
            if number < start:
                continue
            batch = _batch(job_id=job.id, batch_no=number, rows=rows)
            futures.append(send(topic_name(TOPIC), key=batch.key, value=batch.to_event().encode()))
            if len(futures) >= SPLIT_CHUNK_BATCHES:
                _record_produced(job_id=job.id, futures=futures, produced=number + 1)
                futures = []
        if futures:
            _record_produced(job_id=job.id, futures=futures, produced=number + 1)
    finally:
        job.file.close()


def _record_produced(*, job_id: uuid.UUID, futures: list, produced: int) -> None:
    wait_all(futures)
    ImportJob.objects.filter(id=job_id, produced_batches__lt=produced).update(
        produced_batches=produced, progressed_at=timezone.now()
    )


def _batch(*, job_id: uuid.UUID, batch_no: int, rows: list[Row]) -> ImportBatch:
    return ImportBatch(
        job_id=job_id,
        batch_no=batch_no,
        rows=[[r.line, *(r.values.get(f, "") for f in FIELDS)] for r in rows if not r.error],
        errors=[[r.line, r.error] for r in rows if r.error],
    )


def _fail(*, job_id: uuid.UUID, reason: str) -> None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(id=job_id)
        if job.failure or job.completed_at:
            return
        job.failure = reason
        job.save(update_fields=["failure"])
        notify_in_transaction(
            job.channel, {"type": "failed", "job_id": str(job.id), "reason": reason}
        )


# -- sweeping (run by the importer now and then) --------------------------------------------


def sweep_imports() -> dict[str, int]:
    """Re-dispatch splits that went silent and fail jobs that stopped making progress.

    A split whose worker died (or whose task was lost with Redis) is queued again after
    ``CONTACTS_SPLIT_REDISPATCH_SECONDS`` without progress; it resumes where it got to. A
    job whose batches were all produced but not all imported for
    ``CONTACTS_IMPORT_STALL_SECONDS`` (batches lost with the broker, say) is failed with
    that reason, and its browser is told.
    """
    from .tasks import split_contacts_import

    now = timezone.now()
    unfinished = ImportJob.objects.filter(failure="", completed_at__isnull=True)
    redispatch_before = now - timedelta(seconds=settings.CONTACTS_SPLIT_REDISPATCH_SECONDS)
    stall_before = now - timedelta(seconds=settings.CONTACTS_IMPORT_STALL_SECONDS)
    counts = {"redispatched": 0, "failed": 0}
    for job in unfinished.filter(progressed_at__lt=stall_before):
        silent = int((now - job.progressed_at).total_seconds())
        _fail(job_id=job.id, reason=f"the import made no progress for {silent} s")
        counts["failed"] += 1
    splitting = unfinished.filter(progressed_at__lt=redispatch_before).exclude(
        total_batches__isnull=False, produced_batches__gte=F("total_batches")
    )
    for job_id in splitting.values_list("id", flat=True):
        # Claim it, so two sweepers do not both queue it; the split refreshes the mark.
        if ImportJob.objects.filter(id=job_id, progressed_at__lt=redispatch_before).update(
            progressed_at=now
        ):
            split_contacts_import.delay(str(job_id))
            counts["redispatched"] += 1
    if any(counts.values()):
        logger.warning("imports swept", extra=counts)
    return counts


# -- import (the importer consumer) --------------------------------------------------------


def import_batch(*, batch: ImportBatch) -> None:
    """Apply one batch exactly once; must run inside the caller's transaction.

    The done-batch row, the upserts, the counters and the notifications commit together: a
    redelivered batch finds its done-batch row and changes nothing.
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
    message: dict[str, Any] = {
        "type": "batch",
        "job_id": str(job.id),
        "batch_no": batch.batch_no,
        "rows": batch.size,
        **counts,
        "errors": errors,
    }
    notify_in_transaction(job.channel, message)
    if job.total_batches is not None and job.done_batches == job.total_batches:
        job.completed_at = timezone.now()
        fields.append("completed_at")
        notify_in_transaction(
            job.channel,
            {
                "type": "completed",
                "job_id": str(job.id),
                "total_rows": job.total_rows,
                "imported": job.imported,
                "updated": job.updated,
                "failed": job.failed,
            },
        )
    job.save(update_fields=fields)


def upsert_contacts(*, owner_id: int, job_id: uuid.UUID, rows: list[CleanRow]) -> int:
    """Insert or update ``rows`` by email for ``owner_id``; return how many were new.

    Duplicates keep the last line; an earlier line of the same job never overwrites a later
    one, even when its batch is imported afterwards.
    """
    latest: dict[str, CleanRow] = {}
    for row in rows:
        if row.email not in latest or latest[row.email].line < row.line:
            latest[row.email] = row
    if not latest:
        return 0
    # Sorted so concurrent importers lock contact rows in one order and cannot deadlock.
    unique = [latest[email] for email in sorted(latest)]
    now = timezone.now()
    field = Contact._meta.get_field("source_job")
    job_value = field.get_db_prep_value(job_id, connection)
    created = Contact._meta.get_field("created_at").get_db_prep_value(now, connection)
    params: list = []
    for row in unique:
        params += [owner_id, row.email, row.name, row.phone, row.company, created, created]
        params += [job_value, row.line]
    table = Contact._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(unique))
    postgres = connection.vendor == "postgresql"
    distinct = "IS DISTINCT FROM" if postgres else "IS NOT"
    sql = (
        f"INSERT INTO {table} (owner_id, email, name, phone, company, created_at, updated_at, "
        f"source_job, source_line) VALUES {values} "
        f"ON CONFLICT (owner_id, email) DO UPDATE SET name = EXCLUDED.name, "
        f"phone = EXCLUDED.phone, company = EXCLUDED.company, updated_at = EXCLUDED.updated_at, "
        f"source_job = EXCLUDED.source_job, source_line = EXCLUDED.source_line "
        f"WHERE {table}.source_job {distinct} EXCLUDED.source_job "
        f"OR {table}.source_line < EXCLUDED.source_line"
    )
    with connection.cursor() as cursor:
        if postgres:
            # xmax = 0 only on a row this statement inserted.
            cursor.execute(sql + " RETURNING (xmax = 0)", params)
            return sum(1 for (inserted,) in cursor.fetchall() if inserted)
        # SQLite runs one writer at a time, so counting first is exact there.
        existing = Contact.objects.filter(owner_id=owner_id, email__in=list(latest)).count()
        cursor.execute(sql, params)
        return len(unique) - existing
