"""POST /api/contacts/imports and GET /api/contacts: limits, channels, bad files, listing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import MessageSizeTooLargeError

from contacts.models import Contact, ImportJob
from contacts.tasks import SPLIT_FAILED, split_contacts_import
from eventplatform.kafka.config import client_options, topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.models import OutboxEvent
from eventplatform.notifications.tokens import issue_channel
from tests.helpers import read_topic

from .conftest import contacts_csv, csv_bytes, post_import

pytestmark = pytest.mark.django_db


def notifications() -> list[dict]:
    rows = OutboxEvent.objects.filter(topic="notifications").order_by("id")
    return [Event.decode(bytes(row.value)).data["message"] for row in rows]


def produced_batches() -> int:
    consumer = KafkaConsumer(**client_options())
    try:
        topic = topic_name("contacts.import-jobs")
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def test_upload_answers_202_at_once_and_queues_the_split(user, channel, client_for, kafka):
    # No eager mode and no worker: the answer cannot depend on the file being read.
    response = post_import(client_for(user), b"\x89PNG not even read", channel)
    assert response.status_code == 202
    job = ImportJob.objects.get(id=response.json()["job_id"])
    assert (job.owner, job.channel, job.original_name) == (user, channel, "contacts.csv")
    assert job.file.read() == b"\x89PNG not even read"
    assert job.total_batches is None and notifications() == []


def test_file_over_the_limit_is_refused_with_413_before_anything_is_queued(
    user, channel, client_for, settings, django_capture_on_commit_callbacks
):
    settings.CONTACTS_IMPORT_MAX_BYTES = 1000
    content = contacts_csv(100)
    with django_capture_on_commit_callbacks() as queued:
        response = post_import(client_for(user), content, channel)
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"the file is {len(content):,} bytes; the limit is 1,000 bytes",
        "limit_bytes": 1000,
    }
    assert queued == [] and not ImportJob.objects.exists()


@pytest.mark.parametrize(
    ("channel_of", "status", "detail"),
    [
        (None, 400, "a notification channel is required"),
        ("bob", 403, "the notification channel belongs to another user"),
        ("forged", 403, "the notification channel is not one this server issued"),
    ],
)
def test_missing_or_foreign_channel_is_refused(
    user, other_user, client_for, channel_of, status, detail
):
    channel = {
        None: None,
        "bob": issue_channel(user_id=other_user.pk),
        "forged": "eyJ1IjoxfQ:forged:signature",
    }[channel_of]
    response = post_import(client_for(user), contacts_csv(3), channel)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert not ImportJob.objects.exists()


def test_anonymous_upload_is_refused(client, user, channel):
    assert post_import(client, contacts_csv(3), channel).status_code == 401


def test_upload_without_a_file_says_so(user, channel, client_for):
    response = client_for(user).post("/api/contacts/imports", {"channel": channel})
    assert response.status_code == 400
    assert response.json() == {"detail": "choose a CSV file to upload (multipart field 'file')"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "the file is empty"),
        (b"email,name\n", "the file has a header row but no data rows"),
        (
            b"name;phone\nAda;123\n",
            "the header has no email column (found 'name', 'phone'; "
            "expected one of: email, e-mail, email address, mail)",
        ),
        (
            "email,name\nzoe@example.com,Zoë\n".encode("latin-1"),
            "the file is not UTF-8 text: line 2 has the byte 0xeb "
            "(save it as UTF-8 and upload it again)",
        ),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the file is a PNG image, not a CSV text file"),
        (b"email\nx@example.com\n\x00\x01\x02binary", "the file is binary, not a CSV text file"),
        (
            b"email,name\na@example.com," + b"x" * 20_000 + b"\n",
            "line 2 is longer than 10000 bytes",
        ),
    ],
    ids=["empty", "blank", "header-only", "no-email", "latin-1", "png", "binary", "long-line"],
)
def test_unreadable_file_notifies_failed_and_produces_no_jobs(
    user,
    channel,
    client_for,
    kafka,
    eager_celery,
    django_capture_on_commit_callbacks,
    content,
    reason,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(client_for(user), content, channel)
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    assert notifications() == [
        {"type": "failed", "job_id": job_id, "reason": reason, "processed_rows": 0}
    ]
    assert produced_batches() == 0
    assert not Contact.objects.exists()


def test_planned_reports_totals_and_ignored_columns(
    user, channel, client_for, kafka, eager_celery, django_capture_on_commit_callbacks
):
    content = csv_bytes(
        "E-Mail;Full Name;Mobile;Organisation;Notes",
        [f"u{n}@example.com;U {n};1;Org;note" for n in range(1, 1201)],
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(client_for(user), content, channel)
    job_id = response.json()["job_id"]
    assert notifications() == [
        {
            "type": "planned",
            "job_id": job_id,
            "file": "contacts.csv",
            "total_rows": 1200,
            "total_batches": 3,
            "ignored_columns": ["Notes"],
        }
    ]
    assert produced_batches() == 3


def test_rows_of_non_ascii_text_travel_in_records_the_broker_accepts(
    user, channel, client_for, kafka, eager_celery, django_capture_on_commit_callbacks
):
    # JSON escapes every character outside ASCII, an emoji into 12 bytes: 100 such rows
    # measured in characters came to 2.9 MB, over Kafka's 1 MiB record limit.
    name = "\N{GRINNING FACE}" * 2_400  # 9,600 bytes of UTF-8, within the line limit
    content = csv_bytes("email,name", [f"u{n}@example.com,{name}" for n in range(1, 201)])
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(client_for(user), content, channel)
    assert response.status_code == 202
    [planned] = notifications()
    assert (planned["type"], planned["total_rows"]) == ("planned", 200)
    records = read_topic(topic_name("contacts.import-jobs"), expected=planned["total_batches"])
    assert len(records) == planned["total_batches"]
    assert max(len(record.value) for record in records) < 1024 * 1024
    rows = [row for record in records for row in Event.decode(record.value).data["rows"]]
    assert sorted(row[0] for row in rows) == list(range(2, 202))
    assert {row[2] for row in rows} == {name}


def test_a_split_that_fails_other_than_by_an_outage_fails_the_import_and_says_so(
    user, channel, kafka, eager_celery, settings
):
    # A line limit raised past what one record can carry: the broker refuses that row's
    # batch (1.2 MB as JSON), and would on every try.
    settings.CONTACTS_IMPORT_MAX_LINE_BYTES = 500_000
    name = "\N{GRINNING FACE}" * 100_000
    content = csv_bytes("email,name", [f"big@example.com,{name}"])
    job = ImportJob.objects.create(
        owner=user,
        file=SimpleUploadedFile("big.csv", content, content_type="text/csv"),
        original_name="big.csv",
        channel=channel,
        progressed_at=timezone.now(),
    )
    with pytest.raises(MessageSizeTooLargeError):
        split_contacts_import.apply(args=[str(job.id)])
    failed = {"type": "failed", "job_id": str(job.id), "reason": SPLIT_FAILED, "processed_rows": 0}
    assert [message["type"] for message in notifications()] == ["planned", "failed"]
    assert notifications()[-1] == failed
    job.refresh_from_db()
    assert job.failure == SPLIT_FAILED


def test_contacts_api_lists_only_the_users_contacts_paginated_and_searchable(
    user, other_user, client_for
):
    Contact.objects.bulk_create(
        [Contact(owner=user, email=f"a{n:03}@example.com", name=f"Ann {n}") for n in range(60)]
        + [Contact(owner=user, email="zed@acme.test", company="Acme")]
        + [Contact(owner=other_user, email="secret@example.com")]
    )
    client = client_for(user)
    first = client.get("/api/contacts").json()
    assert first["count"] == 61 and len(first["items"]) == 50
    assert first["items"][0] == {
        "email": "a000@example.com",
        "name": "Ann 0",
        "phone": "",
        "company": "",
    }
    assert len(client.get("/api/contacts?page=2").json()["items"]) == 11
    found = client.get("/api/contacts?q=acme").json()
    assert [c["email"] for c in found["items"]] == ["zed@acme.test"]
    assert client.get("/api/contacts?q=secret").json()["count"] == 0


def test_pages_need_login_and_show_own_contacts(user, other_user, client_for, client):
    assert client.get("/contacts/import/").status_code == 302
    Contact.objects.create(owner=user, email="mine@example.com")
    Contact.objects.create(owner=other_user, email="theirs@example.com")
    logged_in = client_for(user)
    page = logged_in.get("/contacts/").content.decode()
    assert "mine@example.com" in page and "theirs@example.com" not in page
    upload = logged_in.get("/contacts/import/").content.decode()
    assert 'id="importer"' in upload and "data-channel=" in upload
