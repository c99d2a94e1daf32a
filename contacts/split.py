"""Stage 2 of an import (the Celery task): read the file, plan it, produce its batches."""

import logging
import uuid
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kafka.errors import KafkaError

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all
from eventplatform.kafka.topic_identity import topic_id_now

from .csv_reader import DEFAULT_MAX_LINE_BYTES, FIELDS, CsvFile, Row, UnreadableFile
from .events import TOPIC, ImportBatch
from .models import ImportJob
from .progress import fail_import, notify_planned

logger = logging.getLogger("contacts")

BATCH_ROWS = 500
#: Characters of row values per batch: most files are ASCII, where this is about the size
#: of the record.
BATCH_BYTES = 256 * 1024
#: What a batch's record may weigh, well under Kafka's default 1 MiB limit. JSON escapes
#: every character outside ASCII (an emoji into 12 bytes), so a batch of such text is
#: halved until its record fits.
MAX_RECORD_BYTES = 512 * 1024
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
        size += sum(map(len, row.values.values())) + len(row.error) + 16
        if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _read(job: ImportJob) -> tuple[list[tuple[str, bytes]], int, list[str]]:
    """Read the whole file once: each batch's record (key and value), the file's rows and its
    ignored columns; or raise UnreadableFile. The records are kept, about the file's size,
    so the file is parsed once rather than once to plan it and again to produce it."""
    csv_file = open_csv(job)
    try:
        records, rows = [], 0
        for batch_rows in _batches(csv_file):
            rows += len(batch_rows)
            records += _records(job_id=job.id, first_batch_no=len(records), rows=batch_rows)
    finally:
        job.file.close()
    if rows == 0:
        raise UnreadableFile("the file has a header row but no data rows")
    return records, rows, csv_file.layout.ignored


def _records(*, job_id: uuid.UUID, first_batch_no: int, rows: list[Row]) -> list[tuple[str, bytes]]:
    """``rows`` as one batch's record (key and value), or as the records of its halves,
    numbered on from ``first_batch_no``, until each is at most ``MAX_RECORD_BYTES``."""
    batch = _batch(job_id=job_id, batch_no=first_batch_no, rows=rows)
    value = batch.to_event().encode()
    # One row cannot be halved; at the default line limit its record is at most ~60 KB.
    if len(value) <= MAX_RECORD_BYTES or len(rows) == 1:
        return [(batch.key, value)]
    half = len(rows) // 2
    first = _records(job_id=job_id, first_batch_no=first_batch_no, rows=rows[:half])
    return first + _records(
        job_id=job_id, first_batch_no=first_batch_no + len(first), rows=rows[half:]
    )


def split_import_job(*, job_id: uuid.UUID | str) -> None:
    """Check the whole file, notify ``planned``, then produce its batches.

    Safe to run again (the task is acknowledged late): ``planned`` is recorded once, and
    batches produced twice are imported once.
    """
    job = ImportJob.objects.filter(id=job_id).first()
    if job is None or job.failure or job.completed_at:
        return
    try:
        records, total_rows, ignored = _read(job)
    except (UnreadableFile, FileNotFoundError) as error:
        reason = str(error) if isinstance(error, UnreadableFile) else "the upload was lost"
        fail_import(job_id=job.id, reason=reason)
        return
    with transaction.atomic():
        locked = ImportJob.objects.select_for_update().get(id=job.id)
        if locked.total_batches is None:
            locked.total_rows, locked.total_batches = total_rows, len(records)
            locked.ignored_columns = ignored
            locked.progressed_at = timezone.now()
            locked.save(
                update_fields=["total_rows", "total_batches", "ignored_columns", "progressed_at"]
            )
            notify_planned(locked)
        start = locked.produced_batches
    # Batches go out only after ``planned`` is committed, so a batch can never be counted
    # before its job knows how many batches make it complete.
    _produce_batches(job_id=job.id, records=records, start=start)


def _produce_batches(*, job_id: uuid.UUID, records: list[tuple[str, bytes]], start: int) -> None:
    """Produce the batches from ``start`` (where an earlier run got to), at least once each.

    Progress is recorded after each chunk is acknowledged, so a split killed at any point
    resumes from its last chunk; a batch produced twice is imported once.
    """
    topic = topic_name(TOPIC)
    landed_in = None
    for first in range(start, len(records), SPLIT_CHUNK_BATCHES):
        chunk = records[first : first + SPLIT_CHUNK_BATCHES]
        landed = wait_all([send(topic, key=key, value=value) for key, value in chunk])
        if landed_in is None:
            # Asked once, after the first chunk: a topic deleted later in this run took
            # that chunk with it, so the job can never complete, and the old id the later
            # chunks record then rightly lets the sweeper fail it.
            landed_in = _import_topic_id()
        _record_produced(
            job_id=job_id, landed=landed, landed_in=landed_in, produced=first + len(chunk)
        )


def _record_produced(*, job_id: uuid.UUID, landed: list, landed_in: str, produced: int) -> None:
    """Once the broker acknowledged a chunk (``landed``, in the topic of id ``landed_in``):
    how far the split got, and where the chunk's batches went (for the sweeper to tell
    batches still queued from batches gone)."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(no_key=True).get(id=job_id)
        offsets = dict(job.batch_offsets)
        if landed_in and job.batch_topic_id and landed_in != job.batch_topic_id:
            offsets = {}  # offsets in a log since deleted say nothing of this one
        for metadata in landed:
            partition = str(metadata.partition)
            offsets[partition] = max(offsets.get(partition, -1), metadata.offset)
        job.batch_offsets, job.batch_topic_id = offsets, landed_in or job.batch_topic_id
        fields = ["batch_offsets", "batch_topic_id"]
        if job.produced_batches < produced:
            job.produced_batches, job.progressed_at = produced, timezone.now()
            fields += ["produced_batches", "progressed_at"]
        job.save(update_fields=fields)


def _import_topic_id() -> str:
    """The import topic's id, asked once a chunk was acknowledged: the id of the log the
    chunk went to, or of one newer still (the job then waits, it is not failed). "" when
    the broker cannot say: the offsets alone then tell where the batches are."""
    try:
        return topic_id_now(topic_name(TOPIC))
    except (KafkaError, ConnectionError) as error:
        logger.info("import topic id not known", extra={"error": repr(error)[:200]})
        return ""


def _batch(*, job_id: uuid.UUID, batch_no: int, rows: list[Row]) -> ImportBatch:
    return ImportBatch(
        job_id=job_id,
        batch_no=batch_no,
        rows=[[r.line, *(r.values.get(f, "") for f in FIELDS)] for r in rows if not r.error],
        errors=[[r.line, r.error] for r in rows if r.error],
    )
