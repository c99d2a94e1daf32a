"""Stage 2 of an import (the Celery task): read the file, plan it, produce its batches."""

import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all

from .csv_reader import DEFAULT_MAX_LINE_BYTES, FIELDS, CsvFile, Row, UnreadableFile
from .events import TOPIC, ImportBatch
from .models import ImportJob
from .progress import fail_import, notify_planned

BATCH_ROWS = 500
# Keeps a record well under Kafka's default 1 MB limit however long the rows are.
BATCH_BYTES = 256 * 1024
#: Batches acknowledged between two records of the split's progress.
SPLIT_CHUNK_BATCHES = 20


def open_csv(job: ImportJob) -> CsvFile:
    """The job's stored file as a :class:`CsvFile` (the caller closes ``job.file``)."""
    max_line = getattr(settings, "CONTACTS_IMPORT_MAX_LINE_BYTES", DEFAULT_MAX_LINE_BYTES)
    return CsvFile(job.file.open("rb"), max_line_bytes=max_line)


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


def _plan(job: ImportJob) -> tuple[int, int, list[str]]:
    """Read the whole file once: rows, batches and ignored columns, or UnreadableFile."""
    csv_file = open_csv(job)
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
        fail_import(job_id=job.id, reason=reason)
        return
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(id=job.id)
        if locked.total_batches is None:
            locked.total_rows, locked.total_batches = total_rows, total_batches
            locked.ignored_columns = ignored
            locked.progressed_at = timezone.now()
            locked.save(
                update_fields=["total_rows", "total_batches", "ignored_columns", "progressed_at"]
            )
            notify_planned(locked)
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
    csv_file = open_csv(job)
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
