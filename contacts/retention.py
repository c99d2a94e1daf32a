"""Uploaded files are kept for a while after their import finished, then deleted.

An unfinished import needs its file (a split resumes from it, and the embedded broker's
restart produces its batches again from it); a finished one only for its refused rows,
which the user downloads soon after, if at all. ``CONTACTS_UPLOAD_RETENTION_DAYS`` after
the import completed or failed its file is deleted; the import and its row errors stay.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import ImportJob

logger = logging.getLogger("contacts")

#: Files deleted per call at most, so that a sweep stays short after a long pause.
CHUNK = 200

#: Files this process's storage refused to delete (logged once each).
_refused: set[str] = set()


def delete_expired_uploads() -> int:
    """Delete the stored files of imports finished longer ago than the retention period;
    return how many were deleted. A file the storage refuses to delete is logged and left
    alone (until the process restarts); it holds up neither the others nor the caller."""
    cutoff = timezone.now() - timedelta(days=settings.CONTACTS_UPLOAD_RETENTION_DAYS)
    expired = (
        ImportJob.objects.exclude(file="")
        .exclude(file__in=_refused)
        .filter(Q(completed_at__lt=cutoff) | Q(failed_at__lt=cutoff))
        .order_by("created_at")
        .values_list("id", "file")[:CHUNK]
    )
    storage = ImportJob._meta.get_field("file").storage
    deleted = 0
    for job_id, name in expired:
        # The file first, then the mark: a crash in between leaves the mark to set again
        # next time (deleting a missing file is no error), never a file no one will delete.
        try:
            storage.delete(name)
        except Exception as error:  # any storage's failure, a full disk's or a bucket's
            _refused.add(name)  # not asked again by this process, nor in the others' way
            logger.warning(
                "expired upload not deleted",
                extra={"job": str(job_id), "file": name, "error": repr(error)[:300]},
            )
            continue
        deleted += ImportJob.objects.filter(id=job_id, file=name).update(file="")
    if deleted:
        logger.info("expired uploads deleted", extra={"deleted": deleted})
    return deleted


def upload_gone_reason() -> str:
    """Why an import's file is no longer there to read."""
    days = settings.CONTACTS_UPLOAD_RETENTION_DAYS
    return (
        "the uploaded file of this import is no longer stored (uploads are deleted "
        f"{days:g} days after their import finished, CONTACTS_UPLOAD_RETENTION_DAYS); its "
        "row errors are still listed in the import's status"
    )
