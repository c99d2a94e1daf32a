"""Careless or hostile requests to the contacts API and pages: each gets a clear 4xx JSON
answer (never a 500, a hang or a traceback), and nothing is left behind or read for nothing.
Some go through the real server (Daphne), where the body limit is the server's own."""

import json
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import ImportJob
from contacts.upload import max_upload_request_bytes
from eventplatform.models import ApiToken
from tests.helpers import serve_daphne, wait_until

from .conftest import contacts_csv, post_import
from .test_import_faults import unreachable_task_queue  # noqa: F401 (a fixture)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PNG_REASON = "the file is a PNG image, not a CSV text file"
HUGE = 999_999_999_999_999_999


def stored_files(root) -> list:
    return sorted(path for path in root.rglob("*") if path.is_file())


# Item 5: the failed rows of an import whose file could not be read.


@pytest.mark.django_db
def test_failed_rows_of_an_import_whose_file_was_unreadable_is_a_409_json_error(
    user, channel, client_for, kafka, eager_celery, django_capture_on_commit_callbacks, media_root
):
    with django_capture_on_commit_callbacks(execute=True):
        job_id = post_import(client_for(user), PNG, channel).json()["job_id"]
    assert client_for(user).get(f"/api/contacts/imports/{job_id}").json()["failure"] == PNG_REASON

    response = client_for(user).get(f"/api/contacts/imports/{job_id}/failed-rows")

    assert not response.streaming
    assert (response.status_code, response.json()) == (
        409,
        {"detail": f"this import has no refused rows to download: {PNG_REASON}"},
    )


@pytest.mark.django_db
def test_failed_rows_of_an_import_not_read_yet_checks_the_file_before_answering(
    user, channel, client_for, media_root
):
    # No worker: the import is still queued, but its file already cannot be read.
    job_id = post_import(client_for(user), PNG, channel).json()["job_id"]

    response = client_for(user).get(f"/api/contacts/imports/{job_id}/failed-rows")

    assert (response.status_code, response.json()) == (
        409,
        {"detail": f"this import has no refused rows to download: {PNG_REASON}"},
    )


# Item 6: a search holding a NUL character.


@pytest.mark.django_db
def test_a_search_with_a_nul_is_a_422_on_the_api_and_matches_nothing_on_the_page(user, client_for):
    client = client_for(user)
    response = client.get("/api/contacts", {"q": "a\x00b"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "q"] and "NUL" in error["msg"]

    page = client.get("/contacts/", {"q": "a\x00b"})
    assert page.status_code == 200
    assert "No contacts match “a\ufffdb”" in page.content.decode()


# Item 7: a page number past what the database can count to.


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/contacts", "/api/contacts/imports"])
def test_a_huge_page_number_is_a_422_and_the_largest_allowed_one_an_empty_page(
    user, client_for, path
):
    client = client_for(user)
    for page in (HUGE, 1_000_001):
        response = client.get(path, {"page": page})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "page"]
    response = client.get(path, {"page": 1_000_000})
    assert (response.status_code, response.json()["items"]) == (200, [])


# Item 8: an upload larger than the limit is refused before its body is read.


def oversize_answer(size: int | None) -> dict:
    limit = max_upload_request_bytes()
    told = f"{size:,} bytes" if size is not None else f"over {limit:,} bytes"
    return {
        "detail": f"the request body is {told}; the limit is {limit:,} bytes",
        "limit_bytes": limit,
    }


@pytest.mark.django_db
def test_a_declared_oversize_upload_is_refused_before_its_body_is_read(user, client_for):
    declared = 300 * 1024 * 1024
    # The body the client really holds is 10 bytes: the test client fails any attempt to
    # read more than that, so a 413 here came from the declared length alone.
    response = client_for(user).generic(
        "POST",
        "/api/contacts/imports",
        b"0123456789",
        content_type="multipart/form-data; boundary=xyz",
        CONTENT_LENGTH=str(declared),
    )
    assert (response.status_code, response.json()) == (413, oversize_answer(declared))
    assert not ImportJob.objects.exists()


@pytest.fixture
def daphne(subprocess_env, tmp_path):
    env = {**subprocess_env, "MEDIA_ROOT": str(tmp_path / "media")}
    with serve_daphne(env=env, log_path=tmp_path / "daphne.log") as port:
        yield port


def exchange(port: int, head: str, body_chunks=()) -> tuple[str, bytes, bytes]:
    """Send ``head`` then each chunk of ``body_chunks``; the status line, headers, body."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(head.encode())
        for chunk in body_chunks:
            connection.sendall(chunk)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head_part, _, body = answer.partition(b"\r\n\r\n")
    status, _, headers = head_part.partition(b"\r\n")
    return status.decode(), headers, body


def post_head(path: str, headers: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n"


def test_daphne_refuses_a_declared_oversize_body_as_soon_as_the_headers_arrive(daphne, tmp_path):
    declared = 300 * 1024 * 1024
    # Nothing of the body is sent: the answer comes from the headers alone, and "Expect:
    # 100-continue" (curl sends it for large bodies) gets the 413, not a go-ahead.
    head = post_head(
        "/api/contacts/imports",
        f"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {declared}\r\n"
        "Expect: 100-continue\r\n",
    )
    status, headers, body = exchange(daphne, head)
    assert status == "HTTP/1.1 413 Content Too Large"
    assert b"application/json" in headers
    assert json.loads(body) == oversize_answer(declared)
    # The application never saw it: the server logs it as the application logs its 4xx.
    log = tmp_path / "daphne.log"
    wait_until(
        lambda: "Content Too Large: POST /api/contacts/imports" in log.read_text(), timeout=10
    )
    assert "status_code=413" in log.read_text()
    assert f"declared_bytes={declared}" in log.read_text()


def test_daphne_stops_reading_a_chunked_body_once_it_passes_the_limit(daphne):
    mebibyte = b"x" * (1024 * 1024)
    passed = max_upload_request_bytes() // len(mebibyte) + 1
    chunk = f"{len(mebibyte):x}\r\n".encode() + mebibyte + b"\r\n"
    head = post_head(
        "/api/contacts/imports",
        "Content-Type: multipart/form-data; boundary=xyz\r\nTransfer-Encoding: chunked\r\n",
    )
    status, _, body = exchange(daphne, head, [chunk] * passed)
    assert status == "HTTP/1.1 413 Content Too Large"
    assert json.loads(body) == oversize_answer(None)


@pytest.mark.django_db(transaction=True)
def test_daphne_still_passes_bodies_within_the_limit_and_answers_failed_rows(
    daphne, user, channel, media_root
):
    # Item 5 through the real server, which once never answered at all.
    job_id = ImportJob.objects.create(
        owner=user, channel=channel, file=SimpleUploadedFile("pic.csv", PNG), failure=PNG_REASON
    ).id
    token = ApiToken.issue(user)[1]
    head = f"GET /api/contacts/imports/{job_id}/failed-rows HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    status, _, body = exchange(
        daphne, head + f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    assert status == "HTTP/1.1 409 Conflict"
    assert json.loads(body)["detail"].endswith(PNG_REASON)
    # A body within the limit reaches the application (here refused for want of a user).
    status, _, body = exchange(
        daphne,
        post_head("/api/contacts/imports", "Content-Length: 5\r\nConnection: close\r\n") + "hello",
    )
    assert status == "HTTP/1.1 401 Unauthorized"


# Item 10: an upload refused because the task queue is down keeps nothing.


@pytest.mark.django_db(transaction=True)
def test_an_upload_refused_while_the_task_queue_is_down_leaves_no_file_behind(
    user,
    channel,
    client_for,
    media_root,
    unreachable_task_queue,  # noqa: F811
):
    response = post_import(client_for(user), contacts_csv(3), channel)
    assert response.status_code == 503
    assert "cannot be queued" in response.json()["detail"]
    assert not ImportJob.objects.exists()
    assert stored_files(media_root) == []
