"""Imports that ride out faults: a queue that is down, a split that died, batches lost."""

import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from contacts.events import ImportBatch
from contacts.importer import ContactImporter
from contacts.models import ImportJob
from contacts.sweeper import sweep_imports
from contacts.upload import ImportsUnavailable, create_import_job
from eventplatform.celery import app as celery_app
from eventplatform.embedded.ports import free_port
from eventplatform.kafka.config import consumer_options, topic_name
from eventplatform.kafka.envelope import Event
from tests.helpers import RunningConsumer, read_topic, recreate_topic, wait_until

from .conftest import contacts_csv
from .test_imports_api import notifications

pytestmark = pytest.mark.django_db(transaction=True)


def make_job(user, channel, *, rows: int, silent_for: float, **fields) -> ImportJob:
    upload = SimpleUploadedFile("contacts.csv", contacts_csv(rows), content_type="text/csv")
    return ImportJob.objects.create(
        owner=user,
        file=upload,
        original_name="contacts.csv",
        channel=channel,
        progressed_at=timezone.now() - timedelta(seconds=silent_for),
        **fields,
    )


def produced_batch_numbers() -> list[int]:
    records = read_topic(topic_name("contacts.import-jobs"))
    return sorted(ImportBatch.from_event(Event.decode(r.value)).batch_no for r in records)


@pytest.fixture
def unreachable_task_queue(monkeypatch):
    """Celery's broker is a port nothing listens on (the real Redis stays up for others)."""
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setitem(celery_app.conf, "task_publish_retry_policy", {"max_retries": 1})
    # Connections and producers are pooled per app: fresh pools for the dead URL, the
    # working ones back afterwards.
    working = celery_app._pool, celery_app.amqp._producer_pool
    celery_app._pool = celery_app.amqp._producer_pool = None
    yield
    celery_app._pool, celery_app.amqp._producer_pool = working


def test_an_upload_the_queue_cannot_take_is_refused_and_leaves_no_job(
    user, channel, unreachable_task_queue
):
    upload = SimpleUploadedFile("contacts.csv", contacts_csv(3), content_type="text/csv")
    with pytest.raises(ImportsUnavailable, match="cannot be queued"):
        create_import_job(owner=user, upload=upload, channel=channel)
    assert not ImportJob.objects.exists()


def test_an_upload_during_a_queue_outage_answers_503_with_retry_after_and_stores_nothing(
    user, channel, client_for, unreachable_task_queue
):
    upload = SimpleUploadedFile("contacts.csv", contacts_csv(3), content_type="text/csv")
    response = client_for(user).post("/api/contacts/imports", {"file": upload, "channel": channel})
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "cannot be queued" in response.json()["detail"]
    assert not ImportJob.objects.exists()


def test_a_silent_split_is_queued_again_and_resumes_where_it_stopped(
    user, channel, kafka, eager_celery, settings
):
    settings.CONTACTS_SPLIT_REDISPATCH_SECONDS = 60
    # 5,000 rows are 10 batches; the dead split had planned and produced the first 4.
    job = make_job(user, channel, rows=5000, silent_for=120, total_rows=5000, total_batches=10)
    ImportJob.objects.filter(id=job.id).update(produced_batches=4)
    fresh = make_job(user, channel, rows=10, silent_for=5)  # still within its time

    assert sweep_imports() == {"redispatched": 1, "failed": 0}

    assert produced_batch_numbers() == list(range(4, 10))  # only what was missing
    job.refresh_from_db()
    assert job.produced_batches == 10
    assert job.progressed_at > timezone.now() - timedelta(seconds=10)
    fresh.refresh_from_db()
    assert fresh.produced_batches == 0  # not re-dispatched yet


def test_a_job_whose_batches_were_lost_fails_and_its_browser_is_told(user, channel, settings):
    settings.CONTACTS_IMPORT_STALL_SECONDS = 600
    job = make_job(
        user,
        channel,
        rows=1000,
        silent_for=700,
        total_rows=1000,
        total_batches=2,
        produced_batches=2,
        done_batches=1,
        imported=490,
        failed=10,
    )

    assert sweep_imports() == {"redispatched": 0, "failed": 1}

    job.refresh_from_db()
    assert job.failure.startswith("the import made no progress for 7")
    [failed] = [m for m in notifications() if m["type"] == "failed"]
    assert failed["job_id"] == str(job.id) and "no progress" in failed["reason"]
    assert failed["processed_rows"] == 500  # the first batch's rows, imported or refused
    assert sweep_imports() == {"redispatched": 0, "failed": 0}  # told once


def _upload(user, channel, rows: int) -> ImportJob:
    upload = SimpleUploadedFile("contacts.csv", contacts_csv(rows), content_type="text/csv")
    return create_import_job(owner=user, upload=upload, channel=channel)


def _move_importers_to_the_end() -> None:
    """What an operator's ``kafka-consumer-groups --reset-offsets --to-latest`` does: the
    importers' group skips every batch on the topic."""
    topic = topic_name("contacts.import-jobs")
    consumer = KafkaConsumer(
        **consumer_options(), group_id=topic_name("group.import_contacts"), enable_auto_commit=False
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        consumer.commit({tp: OffsetAndMetadata(ends[tp], "", -1) for tp in partitions})
    finally:
        consumer.close()


def test_a_job_queued_behind_other_imports_waits_however_long_and_completes(
    user, channel, kafka, eager_celery, settings
):
    settings.CONTACTS_IMPORT_STALL_SECONDS = 1
    job = _upload(user, channel, rows=1200)  # 3 batches on the topic, read by no importer
    job.refresh_from_db()
    assert job.produced_batches == 3 and job.batch_offsets
    time.sleep(1.5)

    assert sweep_imports() == {"redispatched": 0, "failed": 0}

    with RunningConsumer(ContactImporter(), poll_timeout_ms=100):
        wait_until(
            lambda: ImportJob.objects.get(id=job.id).completed_at is not None,
            timeout=30,
            message="the waiting import never completed",
        )
    job.refresh_from_db()
    assert (job.failure, job.imported) == ("", 1200)


def test_a_job_whose_batches_the_importers_were_moved_past_fails_after_the_bound(
    user, channel, kafka, eager_celery, settings
):
    settings.CONTACTS_IMPORT_STALL_SECONDS = 1
    job = _upload(user, channel, rows=1200)
    _move_importers_to_the_end()
    time.sleep(1.5)

    assert sweep_imports() == {"redispatched": 0, "failed": 1}

    job.refresh_from_db()
    assert job.failure.startswith("the import made no progress for ")


def test_a_job_whose_batches_went_with_a_deleted_topic_fails_after_the_bound(
    user, channel, kafka, eager_celery, settings
):
    settings.CONTACTS_IMPORT_STALL_SECONDS = 1
    job = _upload(user, channel, rows=1200)
    job.refresh_from_db()
    assert job.produced_batches == 3 and job.batch_topic_id
    # The topic deleted and created again: its batches are gone with the old log.
    recreate_topic(topic_name("contacts.import-jobs"))
    time.sleep(1.5)

    assert sweep_imports() == {"redispatched": 0, "failed": 1}

    job.refresh_from_db()
    assert job.failure.startswith("the import made no progress for ")
