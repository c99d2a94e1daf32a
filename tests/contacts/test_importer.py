"""The importer's rules: validation, last-one-wins duplicates, exactly-once batches."""

import uuid

import pytest
from django.db import transaction

from contacts.batch_import import import_batches
from contacts.events import ImportBatch
from contacts.models import Contact, ImportJob
from contacts.progress import fail_import
from eventplatform.kafka.envelope import Event, PoisonRecord
from eventplatform.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(user, channel):
    return ImportJob.objects.create(
        owner=user, file="x.csv", channel=channel, total_rows=6, total_batches=2
    )


def apply(job, batch_no, rows, errors=()):
    batch = ImportBatch(job_id=job.id, batch_no=batch_no, rows=rows, errors=list(errors))
    with transaction.atomic():
        import_batches(batches=[batch])


def sent() -> list[dict]:
    rows = OutboxEvent.objects.filter(topic="notifications").order_by("id")
    return [Event.decode(bytes(r.value)).data["message"] for r in rows]


def test_rows_are_validated_normalised_and_reported_by_line(job, user):
    apply(
        job,
        0,
        [
            [2, "  Ada@Example.COM ", " Ada ", " 1 ", " ACME "],
            [3, "not-an-email", "", "", ""],
            [4, "", "Nobody", "", ""],
            [6, "long@example.com", "x" * 201, "", ""],
        ],
        errors=[[5, "expected 4 fields as in the header, found 6"]],
    )
    ada = Contact.objects.get(owner=user)
    assert (ada.email, ada.name, ada.phone, ada.company) == ("ada@example.com", "Ada", "1", "ACME")
    assert sent() == [
        {
            "type": "batch",
            "job_id": str(job.id),
            "batch_no": 0,
            "rows": 5,
            "imported": 1,
            "updated": 0,
            "failed": 4,
            "errors": [
                {"line": 3, "reason": "invalid email 'not-an-email'"},
                {"line": 4, "reason": "email is missing"},
                {"line": 5, "reason": "expected 4 fields as in the header, found 6"},
                {"line": 6, "reason": "name is longer than 200 characters"},
            ],
        }
    ]


def test_duplicates_last_one_wins_even_when_batches_arrive_out_of_order(job, user):
    apply(job, 1, [[9, "dup@example.com", "Last", "", ""], [10, "b@example.com", "B", "", ""]])
    apply(
        job,
        0,
        [
            [2, "dup@example.com", "First", "", ""],
            [3, "DUP@example.com", "Second", "", ""],
            [4, "c@example.com", "C", "", ""],
        ],
    )
    assert Contact.objects.get(owner=user, email="dup@example.com").name == "Last"
    completed = sent()[-1]
    # 3 distinct emails are new; the 2 earlier lines of dup@ count as updated.
    assert completed == {
        "type": "completed",
        "job_id": str(job.id),
        "total_rows": 6,
        "imported": 3,
        "updated": 2,
        "failed": 0,
        "ignored_columns": [],
    }
    job.refresh_from_db()
    assert job.completed_at is not None


def test_redelivered_batch_changes_nothing_and_completed_is_sent_once(job, user):
    rows = [[2, "a@example.com", "A", "", ""]]
    apply(job, 0, rows)
    apply(job, 1, [[3, "b@example.com", "B", "", ""]])
    Contact.objects.filter(email="a@example.com").update(name="edited by the user")
    apply(job, 0, rows)
    apply(job, 1, [[3, "b@example.com", "B", "", ""]])
    assert Contact.objects.get(email="a@example.com").name == "edited by the user"
    assert [m["type"] for m in sent()] == ["batch", "batch", "completed"]
    job.refresh_from_db()
    assert (job.done_batches, job.imported, job.updated) == (2, 2, 0)


def test_a_new_import_of_the_same_file_updates_existing_contacts(job, user, channel):
    apply(job, 0, [[2, "a@example.com", "Old", "", ""]])
    again = ImportJob.objects.create(owner=user, file="y.csv", channel=channel, total_batches=1)
    apply(again, 0, [[2, "a@example.com", "New", "", ""]])
    assert Contact.objects.get(email="a@example.com").name == "New"
    assert sent()[-1]["updated"] == 1


def test_batches_of_a_job_that_failed_are_skipped_and_it_never_completes(job, user):
    apply(job, 0, [[2, "a@example.com", "A", "", ""]])
    fail_import(job_id=job.id, reason="the import made no progress for 901 s")
    apply(job, 1, [[3, "b@example.com", "B", "", ""]])  # arrives after the verdict
    assert list(Contact.objects.filter(owner=user).values_list("email", flat=True)) == [
        "a@example.com"
    ]
    assert [message["type"] for message in sent()] == ["batch", "failed"]
    job.refresh_from_db()
    assert job.completed_at is None
    assert job.failure == "the import made no progress for 901 s"


def test_malformed_batch_is_poison():
    bad = Event(type="contacts.import-batch", data={"job_id": str(uuid.uuid4()), "batch_no": 0})
    with pytest.raises(PoisonRecord, match="rows must be"):
        ImportBatch.from_event(Event.decode(bad.encode()))


def test_a_late_batch_of_an_earlier_upload_never_overwrites_a_later_upload(job, user, channel):
    """Two uploads with a contact in common, their batches imported in either order (two
    imports at once, a redelivery, a dead-letter replay): the later upload's values stay."""
    later = ImportJob.objects.create(owner=user, file="y.csv", channel=channel, total_batches=1)
    assert later.created_at > job.created_at
    apply(later, 0, [[2, "a@example.com", "From the later upload", "2", ""]])
    apply(job, 0, [[7, "a@example.com", "From the earlier upload", "1", ""]])

    contact = Contact.objects.get(owner=user, email="a@example.com")
    assert (contact.name, contact.phone) == ("From the later upload", "2")
    # The earlier upload's row was not new; it is counted as an existing contact.
    assert sent()[-1]["updated"] == 1
    # And the earlier upload's next batch still updates what only it wrote.
    apply(job, 1, [[8, "b@example.com", "B", "", ""], [9, "a@example.com", "Again", "", ""]])
    assert Contact.objects.get(owner=user, email="a@example.com").name == "From the later upload"
    assert Contact.objects.get(owner=user, email="b@example.com").name == "B"
