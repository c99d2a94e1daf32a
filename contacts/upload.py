"""Stage 1 of an import: accept the upload, record the job, queue the split."""

import logging

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from eventplatform.notifications.tokens import verify_channel
from eventplatform.outages import ServiceUnavailable

from .models import ImportJob

logger = logging.getLogger("contacts")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
#: Room in an upload's request body for its multipart envelope: boundaries, part headers
#: (the file's name) and the channel field. A body larger than the file limit plus this
#: cannot hold an acceptable file, so it is refused before it is read.
ENVELOPE_BYTES = 64 * 1024


class UploadTooLarge(Exception):
    """The file is over ``CONTACTS_IMPORT_MAX_BYTES``."""


class ImportsUnavailable(ServiceUnavailable):
    """The task queue cannot take the job now; nothing was stored, try again later."""


def max_upload_bytes() -> int:
    """The largest file an import accepts, in bytes (``CONTACTS_IMPORT_MAX_BYTES``)."""
    return getattr(settings, "CONTACTS_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)


def max_upload_request_bytes() -> int:
    """The largest request body an upload may have: the file limit plus its envelope."""
    return max_upload_bytes() + ENVELOPE_BYTES


def create_import_job(*, owner, upload: UploadedFile, channel: str | None) -> ImportJob:
    """Check size and channel, store the file, record the job, queue the split task.

    Atomic: the task is queued inside the job's transaction, so either both happen or
    :class:`ImportsUnavailable` is raised and neither the job nor its stored file exists.
    (A task queued for a job whose commit then failed finds no job and ends.) Raises
    :class:`UploadTooLarge` or ``ChannelRefused`` too; never reads the file's content.
    """
    limit = max_upload_bytes()
    if upload.size > limit:
        raise UploadTooLarge(f"the file is {upload.size:,} bytes; the limit is {limit:,} bytes")
    verify_channel(token=channel, user_id=owner.pk)
    job = ImportJob(
        owner=owner,
        file=upload,
        original_name=(upload.name or "")[:255],
        channel=channel,
        progressed_at=timezone.now(),
    )
    try:
        with transaction.atomic():
            job.save()  # stores the file first, outside the transaction's reach
            _queue_split(job)
    except BaseException:
        _delete_stored_file(job)
        raise
    return job


def _queue_split(job: ImportJob) -> None:
    from .tasks import split_contacts_import

    try:
        split_contacts_import.delay(str(job.id))
    except Exception as error:  # kombu wraps the broker's errors in its own types
        logger.warning("import not queued", extra={"job": str(job.id), "error": repr(error)})
        raise ImportsUnavailable(
            "imports cannot be queued right now (the task queue is unreachable)"
        ) from error


def _delete_stored_file(job: ImportJob) -> None:
    """Delete the file of a job that was not created: a rollback does not remove it from
    storage, and no job would ever refer to it (or delete it) again."""
    # ``_committed`` is set once the storage holds the file; before that, ``name`` is
    # still the client's file name, which must not be deleted from storage.
    if job.file and job.file._committed:
        job.file.delete(save=False)
