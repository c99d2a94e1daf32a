"""Imports that went silent: re-dispatch a lost split, fail a job that stopped progressing."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from .models import ImportJob
from .progress import fail_import

logger = logging.getLogger("contacts")


def sweep_imports(*, importers_able_since: datetime | None = None) -> dict[str, int]:
    """Re-dispatch splits that went silent and fail jobs that stopped making progress.

    A split whose worker died (or whose task was lost with Redis) is queued again after
    ``CONTACTS_SPLIT_REDISPATCH_SECONDS`` without progress; it resumes where it got to. A
    job whose batches were all produced but not all imported for
    ``CONTACTS_IMPORT_STALL_SECONDS`` (batches lost with the broker, say) is failed with
    that reason, and its browser is told. Only once the importers could work for that
    long (``importers_able_since``, when known): after an outage, a job's batches may
    still be waiting their turn on the topic, however long ago it last progressed.
    """
    from .tasks import split_contacts_import

    now = timezone.now()
    unfinished = ImportJob.objects.filter(failure="", completed_at__isnull=True)
    redispatch_before = now - timedelta(seconds=settings.CONTACTS_SPLIT_REDISPATCH_SECONDS)
    stall_before = now - timedelta(seconds=settings.CONTACTS_IMPORT_STALL_SECONDS)
    counts = {"redispatched": 0, "failed": 0}
    if importers_able_since is not None and importers_able_since > stall_before:
        stalled = unfinished.none()
    else:
        stalled = unfinished.filter(progressed_at__lt=stall_before)
    for job in stalled:
        silent = int((now - job.progressed_at).total_seconds())
        fail_import(job_id=job.id, reason=f"the import made no progress for {silent} s")
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
