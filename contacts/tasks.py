"""Celery tasks of contacts."""

from celery import shared_task
from django.db import OperationalError
from kafka.errors import KafkaError

from .models import ImportJob
from .split import split_import_job

#: Tries (half a second apart) to see the job of a task queued inside its transaction.
JOB_VISIBLE_RETRIES = 10


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(KafkaError, OperationalError),
    retry_backoff=True,
    max_retries=10,
)
def split_contacts_import(self, job_id: str) -> None:
    """Read an uploaded CSV, notify ``planned`` and produce its batches to Kafka."""
    if not ImportJob.objects.filter(id=job_id).exists():
        # Queued inside the job's transaction: it may not be committed yet, or it rolled
        # back (then there is nothing to do once the retries run out).
        if self.request.retries < JOB_VISIBLE_RETRIES:
            raise self.retry(countdown=0.5, max_retries=JOB_VISIBLE_RETRIES)
        return
    split_import_job(job_id=job_id)
