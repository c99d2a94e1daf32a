"""Imports users can come back to: the list, one import's status and row errors, the
failed rows as a CSV to fix and upload again, names from first/last-name columns, and the
columns the importer ignores reported in the summary. The split runs eagerly, its batches
go through real Kafka and are imported as the importer would."""

import csv
import io
import time
import uuid
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from contacts.batch_import import import_batches
from contacts.csv_reader import STRAY_CARRIAGE_RETURN
from contacts.events import ImportBatch
from contacts.models import Contact, ImportJob
from contacts.progress import fail_import
from contacts.retention import delete_expired_uploads
from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from tests.helpers import read_topic

from .conftest import contacts_csv, csv_bytes
from .test_imports_api import notifications

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_import(kafka, eager_celery, channel, django_capture_on_commit_callbacks):
    """Upload ``content`` as ``client``'s user and import every batch it produced."""
    imported: set[tuple[str, int]] = set()

    def run(client, content: bytes, name: str = "contacts.csv") -> str:
        upload = SimpleUploadedFile(name, content, content_type="text/csv")
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post("/api/contacts/imports", {"file": upload, "channel": channel})
        assert response.status_code == 202, response.content
        for record in read_topic(topic_name("contacts.import-jobs")):
            batch = ImportBatch.from_event(Event.decode(record.value))
            if (str(batch.job_id), batch.batch_no) not in imported:
                imported.add((str(batch.job_id), batch.batch_no))
                with transaction.atomic():
                    import_batches(batches=[batch])
        return response.json()["job_id"]

    return run


def test_first_and_last_name_columns_make_the_name_and_unused_columns_are_reported(
    user, client_for, run_import
):
    content = csv_bytes(
        "Given_Name,Surname,E-mail,Notes,Favourite Colour",
        [
            "Ada,Lovelace,ada@example.com,met at a fair,green",
            ",Hopper,grace@example.com,,",
            ",,x@example.com,,",
        ],
    )
    job_id = run_import(client_for(user), content)

    names = dict(Contact.objects.filter(owner=user).values_list("email", "name"))
    assert names == {
        "ada@example.com": "Ada Lovelace",
        "grace@example.com": "Hopper",
        "x@example.com": "",
    }
    completed = [m for m in notifications() if m["type"] == "completed"]
    assert completed[0]["ignored_columns"] == ["Notes", "Favourite Colour"]
    status = client_for(user).get(f"/api/contacts/imports/{job_id}").json()
    assert status["ignored_columns"] == ["Notes", "Favourite Colour"]


@pytest.mark.parametrize(
    ("header", "row", "name"),
    [
        ("email,first_name,last_name", "a@example.com,Ada,Lovelace", "Ada Lovelace"),
        ("email,last name,firstname", "a@example.com,Lovelace,Ada", "Ada Lovelace"),
        ("email,family_name,given_name", "a@example.com,Lovelace,Ada", "Ada Lovelace"),
        ("email,name,first_name,last_name", "a@example.com,Countess,Ada,Lovelace", "Countess"),
        ("email,name,first_name,last_name", "a@example.com,,Ada,Lovelace", "Ada Lovelace"),
    ],
)
def test_name_aliases(user, client_for, run_import, header, row, name):
    run_import(client_for(user), csv_bytes(header, [row]))
    assert Contact.objects.get(owner=user).name == name
    assert [m["ignored_columns"] for m in notifications() if m["type"] == "completed"] == [[]]


def test_the_list_holds_the_users_own_imports_newest_first(
    user, other_user, client_for, run_import
):
    first = run_import(client_for(user), contacts_csv(3), "first.csv")
    second = run_import(client_for(user), contacts_csv(2, bad_every=2), "second.csv")
    ImportJob.objects.create(owner=other_user, file="x.csv", channel="c", original_name="bob.csv")

    listing = client_for(user).get("/api/contacts/imports").json()

    assert listing["count"] == 2
    assert [(i["id"], i["file"], i["status"]) for i in listing["items"]] == [
        (second, "second.csv", "completed"),
        (first, "first.csv", "completed"),
    ]
    newest = listing["items"][0]
    assert (newest["total_rows"], newest["processed_rows"], newest["failed"]) == (2, 2, 1)
    assert newest["page_url"] == f"/contacts/import/{second}/"


def test_status_pages_through_every_row_error_with_their_count(user, client_for, run_import):
    job_id = run_import(client_for(user), contacts_csv(1200, bad_every=10))
    client = client_for(user)

    status = client.get(f"/api/contacts/imports/{job_id}?errors_page_size=50").json()
    assert status["status"] == "completed"
    assert (status["total_rows"], status["imported"], status["failed"]) == (1200, 1080, 120)
    assert (status["total_batches"], status["done_batches"]) == (3, 3)
    assert status["row_errors"]["count"] == 120
    lines = []
    for page in (1, 2, 3):
        errors = client.get(
            f"/api/contacts/imports/{job_id}?errors_page={page}&errors_page_size=50"
        ).json()["row_errors"]
        assert (errors["page"], errors["page_size"]) == (page, 50)
        lines += [e["line"] for e in errors["items"]]
    assert lines == [n + 1 for n in range(10, 1201, 10)]
    assert status["row_errors"]["items"][0] == {"line": 11, "reason": "invalid email 'bad-10@'"}


def test_another_users_import_is_not_found_and_bad_queries_are_json_errors(
    user, other_user, client_for, run_import
):
    job_id = run_import(client_for(user), contacts_csv(3))
    bob = client_for(other_user)
    for path in (f"/api/contacts/imports/{job_id}", f"/api/contacts/imports/{job_id}/failed-rows"):
        response = bob.get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "no such import"})
    mine = client_for(user)
    assert mine.get("/api/contacts/imports/not-a-uuid").status_code == 422
    for page in ("0", "1000001", "x"):
        response = mine.get(f"/api/contacts/imports/{job_id}?errors_page={page}")
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == "errors_page"


def test_failed_rows_download_as_a_csv_that_imports_exactly_those_rows_once_fixed(
    user, client_for, run_import
):
    content = csv_bytes(
        "email;first name;last name;notes",
        [
            "ok@example.com;Ok;One;a",
            "bad@;Bad;Two;b",
            "also-ok@example.com;Al;So;c",
            "ragged;x",
            ";No;Mail;d",
            "cr@example.com;Car\rriage;Ret;f",  # a stray carriage return, unquoted
        ],
    )
    job_id = run_import(client_for(user), content)
    response = client_for(user).get(f"/api/contacts/imports/{job_id}/failed-rows")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="contacts-failed-rows.csv"'
    text = b"".join(response.streaming_content).decode()
    assert list(csv.reader(io.StringIO(text))) == [
        ["error", "email", "first name", "last name", "notes"],
        ["invalid email 'bad@'", "bad@", "Bad", "Two", "b"],
        ["expected 4 fields as in the header, found 2", "ragged", "x"],
        ["email is missing", "", "No", "Mail", "d"],
        [STRAY_CARRIAGE_RETURN, "cr@example.com", "Car\rriage", "Ret", "f"],
    ]
    assert '"Car\rriage"' in text  # quoted now, as the reason asks

    fixed = text.replace("bad@,", "bad@example.com,").replace(
        "ragged,x", "ragged@example.com,Rag,Ged,e"
    )
    fixed = fixed.replace(",,No,", ",nomail@example.com,No,").replace('"Car\rriage"', "Carriage")
    again = run_import(client_for(user), fixed.encode(), "contacts-failed-rows.csv")

    status = client_for(user).get(f"/api/contacts/imports/{again}").json()
    assert (status["total_rows"], status["imported"], status["updated"], status["failed"]) == (
        4,
        4,
        0,
        0,
    )
    assert status["ignored_columns"] == ["error", "notes"]
    assert set(Contact.objects.filter(owner=user).values_list("email", "name")) == {
        ("ok@example.com", "Ok One"),
        ("also-ok@example.com", "Al So"),
        ("bad@example.com", "Bad Two"),
        ("ragged@example.com", "Rag Ged"),
        ("nomail@example.com", "No Mail"),
        ("cr@example.com", "Carriage Ret"),
    }


def test_pages_list_recent_imports_and_show_one_import(user, other_user, client_for, run_import):
    job_id = run_import(client_for(user), contacts_csv(3), "march.csv")
    page = client_for(user).get("/contacts/import/").content.decode()
    assert f'href="/contacts/import/{job_id}/"' in page and "march.csv" in page
    one = client_for(user).get(f"/contacts/import/{job_id}/").content.decode()
    assert f'data-job-id="{job_id}"' in one
    assert client_for(other_user).get(f"/contacts/import/{job_id}/").status_code == 404


def test_the_admin_lists_imports_newest_first_and_read_only(
    user, client_for, run_import, admin_client
):
    older = run_import(client_for(user), contacts_csv(2), "older.csv")
    newer = run_import(client_for(user), contacts_csv(2), "newer.csv")
    page = admin_client.get("/admin/contacts/importjob/").content.decode()
    assert page.index(newer) < page.index(older)
    assert "Add import job" not in page
    assert admin_client.get("/admin/contacts/importjob/add/").status_code == 403


def test_an_uploaded_file_is_deleted_once_its_finished_import_outlived_the_retention(
    user, client_for, run_import, media_root, settings, channel
):
    settings.CONTACTS_UPLOAD_RETENTION_DAYS = 3 / 86_400  # three seconds
    finished = run_import(client_for(user), csv_bytes("email", ["ok@example.com", "bad@"]))
    unfinished, failed = (
        ImportJob.objects.create(
            owner=user, file=ContentFile(b"email\nx@example.com\n", name=name), channel=channel
        )
        for name in ("waiting.csv", "failing.csv")
    )
    files = {job.id: Path(job.file.path) for job in ImportJob.objects.all()}
    assert all(path.exists() for path in files.values())
    time.sleep(3.2)
    fail_import(job_id=failed.id, reason="the import made no progress for 901 s")

    assert delete_expired_uploads() == 1  # the completed import's, kept three seconds
    assert not files[uuid.UUID(finished)].exists()
    assert files[unfinished.id].exists(), "an unfinished import still needs its file"
    assert files[failed.id].exists(), "kept from its failure, not from its upload"
    time.sleep(3.2)
    assert delete_expired_uploads() == 1
    assert not files[failed.id].exists() and files[unfinished.id].exists()
    assert delete_expired_uploads() == 0

    mine = client_for(user)
    status = mine.get(f"/api/contacts/imports/{finished}").json()
    assert status["failed_rows_url"] is None
    assert status["row_errors"]["items"] == [{"line": 3, "reason": "invalid email 'bad@'"}]
    response = mine.get(f"/api/contacts/imports/{finished}/failed-rows")
    assert response.status_code == 410
    detail = response.json()["detail"]
    assert detail.startswith("the uploaded file of this import is no longer stored"), detail
    assert "days after their import finished, CONTACTS_UPLOAD_RETENTION_DAYS" in detail
