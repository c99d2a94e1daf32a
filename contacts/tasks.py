"""Celery tasks of contacts."""

from celery import shared_task
from django.db import OperationalError
from kafka.errors import KafkaError

from . import services


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(KafkaError, OperationalError),
    retry_backoff=True,
    max_retries=10,
)
def split_contacts_import(job_id: str) -> None:
    """Read an uploaded CSV, notify ``planned`` and produce its batches to Kafka."""
    services.split_import_job(job_id=job_id)
