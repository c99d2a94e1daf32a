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


class UploadTooLarge(Exception):
    """The file is over ``CONTACTS_IMPORT_MAX_BYTES``."""


class ImportsUnavailable(ServiceUnavailable):
    """The task queue cannot take the job now; nothing was stored, try again later."""


def max_upload_bytes() -> int:
    """The largest file an import accepts, in bytes (``CONTACTS_IMPORT_MAX_BYTES``)."""
    return getattr(settings, "CONTACTS_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)


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
