"""Celery tasks of contacts."""

from celery import shared_task

from eventplatform.kafka.retry import is_outage

from .models import ImportJob
from .progress import fail_import
from .split import split_import_job

#: Tries (half a second apart) to see the job of a task queued inside its transaction.
JOB_VISIBLE_RETRIES = 10
#: The longest pause between two tries while the database or the broker is down, so the
#: split goes on within seconds of its return however long the outage was.
OUTAGE_RETRY_MAX_SECONDS = 5
#: What the browser is told when the split fails other than by an outage.
SPLIT_FAILED = "the import stopped on an unexpected error; the server's log has the details"


# max_retries=None: an outage is retried for as long as it lasts.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def split_contacts_import(self, job_id: str) -> None:
    """Read an uploaded CSV, notify ``planned`` and produce its batches to Kafka.

    An outage (database, or a broker error Kafka calls retriable) is waited out without
    bound, the split resuming where it got to. Any other error would recur on every try, so
    it fails the import, and its browser is told, before failing the task as a bug (else the
    sweeper would queue the split again and again, and the browser would hear nothing).
    """
    try:
        job_exists = ImportJob.objects.filter(id=job_id).exists()
        if job_exists:
            split_import_job(job_id=job_id)
    except Exception as error:
        if not is_outage(error):
            fail_import(job_id=job_id, reason=SPLIT_FAILED)
            raise
        delay = min(OUTAGE_RETRY_MAX_SECONDS, 0.5 * 2**self.request.retries)
        raise self.retry(exc=error, countdown=delay) from None
    if not job_exists and self.request.retries < JOB_VISIBLE_RETRIES:
        # Queued inside the job's transaction: it may not be committed yet, or it rolled
        # back (then there is nothing to do once these tries run out).
        raise self.retry(countdown=0.5, max_retries=JOB_VISIBLE_RETRIES)
