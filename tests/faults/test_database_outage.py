"""PostgreSQL stopped for 90 s under site writes and two imports: the platform waits it out.

Every process keeps running; writes during the outage are refused with a JSON 503 that
says when to retry; within 30 s of the database's return every acknowledged write is in
the read model and both imports end with exact totals: the one the outage hit, and one
whose batches waited on the topic for longer than the stall bound.
"""

import threading
import time

import psycopg
import pytest
import requests

from tests.contacts.conftest import contacts_csv, last_good_email
from tests.contacts.held_rows import backends_waiting_on, contact_held_uncommitted
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

OUTAGE_S = 90
ROWS, BAD_EVERY = 20_000, 500
WAITING_ROWS = 1_000
LAST_GOOD_EMAIL = last_good_email(ROWS, bad_every=BAD_EVERY)


class SiteWriter(threading.Thread):
    """Creates sites and installs an app on each, as fast as answers come, and keeps
    what was acknowledged and how every refusal looked."""

    def __init__(self, web_url: str, token: str):
        super().__init__(daemon=True)
        self.web_url = web_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.acknowledged: dict[str, int] = {}  # site id -> version acknowledged
        # (status, content type, body, Retry-After) of every write that was not acknowledged
        self.refusals: list[tuple[int, str, str, str | None]] = []
        self.stopping = threading.Event()

    def _send(self, method: str, path: str, body: dict) -> dict | None:
        try:
            answer = self.session.request(method, self.web_url + path, json=body, timeout=30)
        except requests.ConnectionError as error:
            self.refusals.append((0, "", str(error), None))
            return None
        if answer.ok:
            return answer.json()
        headers = answer.headers
        self.refusals.append(
            (answer.status_code, headers.get("Content-Type", ""), answer.text[:200])
            + (headers.get("Retry-After"),)
        )
        return None

    def run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            site = self._send("POST", "/api/sites", {"name": f"outage site {n}"})
            if site is not None:
                self.acknowledged[site["id"]] = site["version"]
                installed = self._send("PUT", f"/api/sites/{site['id']}/apps/app-{n}", {})
                if installed is not None:
                    self.acknowledged[site["id"]] = installed["version"]
            time.sleep(0.1)


def _within(seconds: float, condition, explain) -> None:
    """Wait for ``condition``; on time-out fail with what ``explain`` says then."""
    try:
        wait_until(condition, timeout=seconds, interval=0.5)
    except AssertionError:
        raise AssertionError(explain()) from None


def _job(private_postgres, file: str = "contacts.csv") -> tuple:
    with psycopg.connect(private_postgres.url("platform"), connect_timeout=5) as connection:
        return connection.execute(
            "SELECT total_rows, imported, updated, failed, completed_at IS NOT NULL, failure"
            " FROM contacts_importjob WHERE original_name = %s",
            [file],
        ).fetchone()


def _all_batches_produced(connection: psycopg.Connection, file: str) -> bool:
    return connection.execute(
        "SELECT total_batches = produced_batches FROM contacts_importjob WHERE original_name = %s",
        [file],
    ).fetchone() == (True,)


def _user_id(connection: psycopg.Connection, username: str) -> int:
    return connection.execute(
        "SELECT id FROM auth_user WHERE username = %s", [username]
    ).fetchone()[0]


def _contacts_stored(private_postgres) -> int:
    with psycopg.connect(private_postgres.url("platform"), connect_timeout=5) as connection:
        return connection.execute("SELECT count(*) FROM contacts_contact").fetchone()[0]


def test_a_90_s_database_outage_loses_no_acknowledged_write_and_the_import_completes(
    platform_on_private_postgres, private_postgres, tmp_path
):
    platform = platform_on_private_postgres
    platform.manage(
        "shell", "-c", "from django.contrib.auth.models import User as U; U(username='ops').save()"
    )
    token = platform.manage("create_api_token", "ops").strip()
    writer = SiteWriter(platform.web_url, token)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"

    writer.start()
    wait_until(lambda: len(writer.acknowledged) >= 10, timeout=60)
    channel = api.post(f"{platform.web_url}/api/contacts/channels", timeout=30).json()["channel"]
    database_url = platform.env["DATABASE_URL"]
    # The outage must fall mid-import, however fast the import runs: its last batch waits
    # on this test's transaction, which the stopping server then ends.
    with (
        psycopg.connect(database_url, autocommit=True, connect_timeout=5) as watcher,
        contact_held_uncommitted(database_url, _user_id(watcher, "ops"), LAST_GOOD_EMAIL) as hold,
    ):
        accepted = api.post(
            f"{platform.web_url}/api/contacts/imports",
            files={"file": ("contacts.csv", contacts_csv(ROWS, bad_every=BAD_EVERY))},
            data={"channel": channel},
            timeout=60,
        )
        assert accepted.status_code == 202, accepted.text
        wait_until(
            lambda: backends_waiting_on(watcher, hold) > 0,
            timeout=120,
            interval=0.05,
            message="the importer never reached the import's last batch",
        )
        # Its batches wait on the topic behind the held one, through the whole outage.
        waiting = api.post(
            f"{platform.web_url}/api/contacts/imports",
            files={"file": ("waiting.csv", contacts_csv(WAITING_ROWS, domain="waiting.test"))},
            data={"channel": channel},
            timeout=60,
        )
        assert waiting.status_code == 202, waiting.text
        wait_until(
            lambda: _all_batches_produced(watcher, "waiting.csv"),
            timeout=60,
            message="the waiting import was never split",
        )
        private_postgres.stop()
    time.sleep(OUTAGE_S)
    during = list(writer.refusals)
    private_postgres.start()
    imported_before_the_outage = _contacts_stored(private_postgres)
    returned = time.monotonic()

    # Writes after the return are acknowledged again.
    acknowledged_before = len(writer.acknowledged)
    _within(
        30,
        lambda: len(writer.acknowledged) > acknowledged_before + 5,
        lambda: f"writes not acknowledged again after the return: {writer.refusals[-3:]}",
    )
    writer.stopping.set()
    writer.join(timeout=60)

    missing: dict[str, str] = {}
    # A site once read at its acknowledged version is not read again: the read model never
    # goes back a version, and each round then reads only what is still missing.
    shown: set[str] = set()

    def read_model_has_every_acknowledged_write() -> bool:
        missing.clear()
        for site_id, version in list(writer.acknowledged.items()):
            if site_id in shown:
                continue
            answer = api.get(f"{platform.web_url}/api/installed-apps/sites/{site_id}", timeout=10)
            if answer.status_code != 200 or answer.json()["version"] < version:
                missing[site_id] = f"{answer.status_code} {answer.text[:120]} (wanted v{version})"
            else:
                shown.add(site_id)
        return not missing

    _within(
        30,
        read_model_has_every_acknowledged_write,
        lambda: f"{len(missing)} acknowledged writes not in the read model: {missing}",
    )
    for file in ("contacts.csv", "waiting.csv"):
        _within(
            max(1, 30 - (time.monotonic() - returned)),
            lambda f=file: _job(private_postgres, f)[4] or _job(private_postgres, f)[5],
            lambda f=file: f"{f} did not complete: {_job(private_postgres, f)}",
        )

    assert platform.exited() == {}, "a process exited during the outage"
    assert during, "no write was refused while the database was down"
    statuses = {(status, kind, retry) for status, kind, _, retry in during}
    assert {status for status, _, _ in statuses} == {503}, during[:5]
    assert all(kind.startswith("application/json") and retry for _, kind, retry in statuses)
    bad = ROWS // BAD_EVERY
    assert _job(private_postgres) == (ROWS, ROWS - bad, 0, bad, True, "")
    assert _job(private_postgres, "waiting.csv") == (WAITING_ROWS, WAITING_ROWS, 0, 0, True, "")
    assert imported_before_the_outage < ROWS - bad, "the outage did not hit the import"
    assert _contacts_stored(private_postgres) == ROWS - bad + WAITING_ROWS
