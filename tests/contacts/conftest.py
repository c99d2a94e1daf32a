"""Contacts fixtures: users, channels, CSV files, and the import pipeline's processes."""

import signal
import subprocess
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from eventplatform.celery import app as celery_app
from eventplatform.notifications.tokens import issue_channel

ROOT = Path(__file__).resolve().parent.parent.parent
# Celery caches its default queue at first use, so the session picks one unique queue
# before that: a worker of another run on the same Redis never takes these tasks.
CELERY_QUEUE = f"contacts-tests-{uuid.uuid4().hex[:8]}"
celery_app.conf.task_default_queue = CELERY_QUEUE


def csv_bytes(header: str, rows: list[str], *, newline: str = "\n") -> bytes:
    return (newline.join([header, *rows]) + newline).encode()


def contacts_csv(count: int, *, bad_every: int = 0, domain: str = "example.com") -> bytes:
    """``count`` data rows; every ``bad_every``-th row has an invalid email."""
    rows = []
    for n in range(1, count + 1):
        email = f"bad-{n}@" if bad_every and n % bad_every == 0 else f"user{n}@{domain}"
        rows.append(f"{email},Person {n},+1 555 {n:04d},Company {n % 7}")
    return csv_bytes("email,name,phone,company", rows)


def post_import(client, content: bytes, channel: str | None, name: str = "contacts.csv", **extra):
    """``POST /api/contacts/imports`` of ``content`` as a CSV file named ``name``."""
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv")}
    if channel is not None:
        data["channel"] = channel
    return client.post("/api/contacts/imports", data, **extra)


@pytest.fixture
def media_root(settings, tmp_path):
    """Uploads under the test's own folder rather than the working tree's ``var/media``."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def last_good_email(count: int, *, bad_every: int = 0, domain: str = "example.com") -> str:
    """The email of the last valid row of ``contacts_csv`` with the same arguments: the
    row of the import's last batch."""
    n = count if not bad_every or count % bad_every else count - 1
    return f"user{n}@{domain}"


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="pw-123456")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="pw-123456")


@pytest.fixture
def client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def channel(user) -> str:
    return issue_channel(user_id=user.pk)


@pytest.fixture
def eager_celery(monkeypatch):
    """Run the split task inside the request (unit tests only)."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", True)


@pytest.fixture
def celery_worker(subprocess_env, tmp_path):
    """A real Celery worker on this session's queue, killed after the test."""
    log = open(tmp_path / "celery.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "celery"),
            "-A",
            "eventplatform",
            "worker",
            "--pool",
            "solo",
            "-Q",
            CELERY_QUEUE,
            "--loglevel",
            "INFO",
        ],
        cwd=ROOT,
        env={**subprocess_env, "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log_path = log.name
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()


@pytest.fixture
def pipeline(kafka, spawn_manage, celery_worker):
    """Every process of an import: worker, importer, outbox relay, notification relay."""
    return {
        "worker": celery_worker,
        "importer": spawn_manage("import_contacts"),
        "outbox": spawn_manage("relay_outbox"),
        "notifications": spawn_manage("relay_notifications"),
    }
