"""Imports that went silent: re-dispatch a lost split, fail a job that stopped progressing."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from kafka.errors import KafkaError

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.consumer import group_id_of
from eventplatform.kafka.group_positions import committed_positions
from eventplatform.kafka.topic_identity import topic_id_now

from .events import TOPIC
from .models import ImportJob
from .progress import fail_import

logger = logging.getLogger("contacts")


def _not_queued(jobs: list[ImportJob]) -> list[ImportJob]:
    """The ``jobs`` none of whose batches still waits for the importers on the topic.

    A job whose batch offsets are unknown (its split ran before they were recorded) counts
    as not queued, and so does one whose batches went to a topic since deleted (the topic
    now under that name has another id). None does while the broker cannot say where the
    importers are: failing an import that is only waiting would be the worse mistake.
    """
    from .importer import ContactImporter  # the importer runs the sweeper: imported late

    partitions = sorted({int(p) for job in jobs for p in job.batch_offsets})
    if not partitions:
        return jobs
    try:
        group = group_id_of(ContactImporter.name)
        read_to = committed_positions(group, topic_name(TOPIC), partitions)
        topic_id = topic_id_now(topic_name(TOPIC))
    except (KafkaError, ConnectionError) as error:
        logger.warning("stalled imports not checked: %s", error)
        return []
    return [
        job
        for job in jobs
        if (job.batch_topic_id and topic_id and job.batch_topic_id != topic_id)
        or all(read_to[int(p)] > offset for p, offset in job.batch_offsets.items())
    ]


def sweep_imports(*, importers_able_since: datetime | None = None) -> dict[str, int]:
    """Re-dispatch splits that went silent and fail jobs that stopped making progress.

    A split whose worker died (or whose task was lost with Redis) is queued again after
    ``CONTACTS_SPLIT_REDISPATCH_SECONDS`` without progress; it resumes where it got to. A
    job whose batches were all produced but not all imported for
    ``CONTACTS_IMPORT_STALL_SECONDS`` (batches lost with the broker, say) is failed with
    that reason, and its browser is told. Only once the importers could work for that
    long (``importers_able_since``, when known): after an outage, a job's batches may
    still be waiting their turn on the topic, however long ago it last progressed. Nor
    while the importers have not yet read as far as its batches: behind a backlog of other
    imports, silence says nothing of them either.
    """
    from .tasks import split_contacts_import

    now = timezone.now()
    unfinished = ImportJob.objects.filter(failure="", completed_at__isnull=True)
    redispatch_before = now - timedelta(seconds=settings.CONTACTS_SPLIT_REDISPATCH_SECONDS)
    stall_before = now - timedelta(seconds=settings.CONTACTS_IMPORT_STALL_SECONDS)
    counts = {"redispatched": 0, "failed": 0}
    if importers_able_since is not None and importers_able_since > stall_before:
        stalled = []
    else:
        stalled = _not_queued(list(unfinished.filter(progressed_at__lt=stall_before)))
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
