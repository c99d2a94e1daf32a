"""Imports whose batches the broker forgot: produce every unfinished job's batches again.

A memory-only broker (the embedded one) starts with empty topics, so the batches of an
import still running when it stopped are gone; its stored file and its done-batch rows are
not. Called before any importer runs (``EMBEDDED_BROKER_START_HOOKS``).
"""

from django.utils import timezone

from .models import ImportJob


def resend_unfinished_imports() -> int:
    """Queue the split of every unfinished import again, from its first batch; returns how
    many. The importers skip the batches already imported, so each job completes once, with
    exact totals."""
    from .tasks import split_contacts_import

    unfinished = ImportJob.objects.filter(failure="", completed_at__isnull=True)
    job_ids = [str(job_id) for job_id in unfinished.values_list("id", flat=True)]
    # The offsets its batches had are in the log the broker forgot.
    ImportJob.objects.filter(id__in=job_ids).update(
        produced_batches=0, batch_offsets={}, batch_topic_id="", progressed_at=timezone.now()
    )
    for job_id in job_ids:
        split_contacts_import.delay(job_id)
    return len(job_ids)
