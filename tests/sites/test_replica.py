"""The read API on its replica: read-after-write by version, lag in /metrics and /readyz, and
a PostgreSQL hot standby that falls behind, stops, comes back, and refuses writes.

The tests that take the ``standby`` fixture need the real standby of ``.ci/standby``; the
others hold on any replica, the SQLite and PostgreSQL mirrors included.
"""

import contextlib
import math
import os
import re
import subprocess
import uuid

import psycopg
import pytest
from django.db import DatabaseError, connections, transaction

from eventplatform import replica
from eventplatform.routers import PROJECTIONS_REPLICA
from sites.events import site_deleted
from sites.projection import document_cache
from sites.projection.models import ProjectedSite

from ..conftest import ROOT
from ..helpers import wait_until
from .conftest import all_databases
from .test_document_cache import read, wait_until_kept
from .test_projection import snapshot

pytestmark = all_databases


def site_url(site_id, query: str = "") -> str:
    return f"/api/installed-apps/sites/{site_id}{query}"


def lag_gauge(client) -> float:
    response = client.get("/metrics")
    assert response.status_code == 200
    found = re.search(
        rb"^eventplatform_projections_replica_lag_seconds (\S+)$", response.content, re.M
    )
    assert found, response.content
    return float(found.group(1))


class Standby:
    """The hot standby behind the ``projections_replica`` alias, driven as an operator would."""

    def sql(self, statement: str):
        config = connections[PROJECTIONS_REPLICA].settings_dict
        with psycopg.connect(
            host=config["HOST"],
            port=config["PORT"],
            user=config["USER"],
            dbname="postgres",
            autocommit=True,
        ) as connection:
            return connection.execute(statement).fetchone()[0]

    @contextlib.contextmanager
    def replay_paused(self):
        """Pause WAL replay (the standby keeps receiving) and resume it whatever happens."""
        self.sql("SELECT pg_wal_replay_pause()")
        try:
            wait_until(
                lambda: self.sql("SELECT pg_get_wal_replay_pause_state()") == "paused",
                message="replay never paused",
            )
            yield
        finally:
            self.sql("SELECT pg_wal_replay_resume()")

    @contextlib.contextmanager
    def stopped(self):
        """Stop the standby (fast shutdown), and start it again whatever happens."""
        self._ci_standby("stop")
        try:
            yield
        finally:
            self._ci_standby()  # starts it and returns once it streams again

    def _ci_standby(self, *args: str) -> None:
        result = subprocess.run(
            ["bash", str(ROOT / ".ci" / "standby"), *args], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr


@pytest.fixture
def standby() -> Standby:
    """The real hot standby; a clear failure (never a skip) where the suite runs without it."""
    if not os.environ.get("PROJECTIONS_REPLICA_DATABASE_URL"):
        pytest.fail(
            "this test needs the PostgreSQL hot standby: run `bash .ci/standby` and "
            'eval "$(bash .ci/standby env)" (sets PROJECTIONS_REPLICA_DATABASE_URL)'
        )
    assert replica.is_standby(), "PROJECTIONS_REPLICA_DATABASE_URL is not a hot standby"
    return Standby()


def test_min_version_answers_that_version_or_newer_else_409_never_older(
    kafka, client, send_raw, project_all
):
    site, gone, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    send_raw(
        (str(site), snapshot(site, 2, ["blog"])),
        (str(gone), snapshot(gone, 1, ["blog"])),
        (str(gone), site_deleted(site_id=gone, version=3)),
    )
    project_all()

    for query in ("", "?min_version=1", "?min_version=2"):
        response = client.get(site_url(site, query))
        assert (response.status_code, response.json()["version"]) == (200, 2)
    response = client.get(site_url(site), headers={"X-Min-Version": "2"})
    assert response.status_code == 200

    response = client.get(site_url(site, "?min_version=3"))
    assert response.status_code == 409
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "detail": "the read replica has not caught up with version 3 of this site yet; retry",
        "version": 2,
        "min_version": 3,
    }
    # Header and parameter together: the higher one counts.
    response = client.get(site_url(site, "?min_version=1"), headers={"X-Min-Version": "5"})
    assert (response.status_code, response.json()["min_version"]) == (409, 5)
    # Not replicated yet at all: the replica has no version to offer.
    response = client.get(site_url(unknown, "?min_version=1"))
    assert (response.status_code, response.json()["version"]) == (409, None)
    # A deletion is a version too: once the replica has it, the answer is a plain 404.
    assert client.get(site_url(gone, "?min_version=3")).status_code == 404
    assert client.get(site_url(gone, "?min_version=4")).json()["version"] == 3

    response = client.get(site_url(site, "?min_version=0"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "min_version"]
    response = client.get(site_url(site), headers={"X-Min-Version": "two"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "X-Min-Version"]
    # Past what a version can be (a bigint), or too long for Python to read as a number.
    for huge in (str(2**63), "9" * 5_000):
        response = client.get(site_url(site), headers={"X-Min-Version": huge})
        assert response.status_code == 422, huge[:30]
        assert response.json()["detail"][0]["msg"] == (
            "must be an integer from 1 to 9223372036854775807"
        )
    assert client.get(site_url(site, f"?min_version={2**63 - 1}")).status_code == 409
    operation = client.get("/api/openapi.json").json()["paths"][
        "/api/installed-apps/sites/{site_id}"
    ]["get"]
    parameters = {(p["in"], p["name"]) for p in operation["parameters"]}
    assert {("query", "min_version"), ("header", "X-Min-Version")} <= parameters
    assert {"200", "404", "409", "503"} <= set(operation["responses"])


def test_a_caught_up_replica_reports_no_lag_and_readiness_stays_ready(
    kafka, client, send_raw, project_all
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()

    # Polled: on a standby shared with other test runs, their writes come and go.
    assert wait_until(lambda: 0 <= lag_gauge(client) < 1, timeout=10, message="lag stayed high")
    response = client.get("/readyz")
    assert (response.status_code, response.json()) == (200, {"status": "ready"})


def test_a_paused_standby_shows_lag_degrades_readiness_and_answers_409_until_resumed(
    standby, kafka, client, send_raw, project_all, settings
):
    settings.PROJECTIONS_REPLICA_MAX_LAG_SECONDS = 0.5
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()

    with standby.replay_paused():
        send_raw((str(site), snapshot(site, 2, ["blog", "forms"])))
        project_all(replicated=False)

        assert wait_until(lambda: lag_gauge(client) > 0.5, timeout=10) > 0.5
        response = client.get("/readyz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["projections_replica_lag_seconds"] > 0.5
        assert re.fullmatch(
            r"replay lag [\d.]+ s exceeds 0\.5 s", body["degraded"]["projections_replica"]
        )
        # Still serving what it has, but never as the version a client asked for.
        response = client.get(site_url(site))
        assert (response.status_code, response.json()["version"]) == (200, 1)
        response = client.get(site_url(site), headers={"X-Min-Version": "2"})
        assert (response.status_code, response.json()["version"]) == (409, 1)
        assert response["Retry-After"] == "1"

    replica.wait_for_replay()
    response = client.get(site_url(site, "?min_version=2"))
    assert (response.status_code, response.json()["version"]) == (200, 2)
    assert wait_until(lambda: lag_gauge(client) < 0.5, timeout=10, message="lag stayed high")
    # Each reading is taken afresh, and the other test worker's writes share this standby:
    # WAL received but not yet replayed while no commit came for 0.5 s reads as lag.
    wait_until(
        lambda: client.get("/readyz").json() == {"status": "ready"},
        timeout=10,
        message="still degraded once the standby had replayed",
    )


def test_a_web_process_started_while_the_standby_lags_serves_the_new_version_once_replayed(
    standby, kafka, client, send_raw, project_all, settings
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()

    with standby.replay_paused():
        send_raw((str(site), snapshot(site, 2, ["blog", "forms"])))
        project_all(replicated=False)  # committed on the primary and announced
        # A web process that starts now subscribes after the announcement: it never hears
        # of version 2, and the standby still answers version 1.
        settings.READ_API_DOCUMENT_CACHE_ENTRIES += 1
        fresh = document_cache._cache()
        wait_until(lambda: fresh._replay_target, message="the new process never subscribed")
        for _ in range(3):
            response, queried_replica = read(client, site)
            assert (response.json()["version"], queried_replica) == (1, True)

    replica.wait_for_replay()
    response = client.get(site_url(site))
    assert (response.status_code, response.json()["version"]) == (200, 2)
    wait_until_kept(client, site)  # and kept from then on
    assert read(client, site)[0].json()["version"] == 2


def test_a_stopped_standby_is_a_503_with_a_reason_and_reads_recover_when_it_returns(
    standby, kafka, client, send_raw, project_all
):
    site, unread = uuid.uuid4(), uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])), (str(unread), snapshot(unread, 1, [])))
    project_all()
    wait_until_kept(client, site)  # in this process's memory, and a live connection to lose

    with standby.stopped():
        # What the process holds in memory it still serves, as current as the projector's
        # last announcement...
        assert client.get(site_url(site)).json()["version"] == 1
        # ...anything else needs the replica. The first request loses its open connection;
        # the next finds nothing to connect to.
        for url in (site_url(unread), site_url(unread), "/api/installed-apps/apps/blog/sites"):
            response = client.get(url)
            assert response.status_code == 503, response.content
            assert response["Retry-After"] == "5"
            body = response.json()
            assert body["detail"] == "the read replica is unavailable; retry later"
            assert body["reason"]
        response = client.get("/readyz")
        assert response.status_code == 503
        assert set(response.json()["failing"]) == {"database"}
        assert math.isnan(lag_gauge(client))

    response = client.get(site_url(unread))
    assert (response.status_code, response.json()["version"]) == (200, 1)
    # Back, it first replays what the primary wrote meanwhile (other test runs share it).
    assert wait_until(lambda: lag_gauge(client) < 1, timeout=30, message="lag stayed high")
    assert client.get("/readyz").json() == {"status": "ready"}


def test_the_standby_itself_refuses_writes_even_when_the_session_asks_for_read_write(
    standby, kafka, send_raw, project_all
):
    site = uuid.uuid4()
    send_raw((str(site), snapshot(site, 1, ["blog"])))
    project_all()

    # The replica connection is read-only by its own settings; lifting that shows the
    # server, not the client configuration, is what refuses.
    with (
        pytest.raises(DatabaseError, match="read-write mode during recovery"),
        transaction.atomic(using=PROJECTIONS_REPLICA),
        connections[PROJECTIONS_REPLICA].cursor() as cursor,
    ):
        cursor.execute("SET TRANSACTION READ WRITE")
    with (
        pytest.raises(DatabaseError, match="read-only transaction"),
        transaction.atomic(using=PROJECTIONS_REPLICA),
    ):
        ProjectedSite.objects.using(PROJECTIONS_REPLICA).filter(site_id=site).delete()
    assert ProjectedSite.objects.filter(site_id=site).get().version == 1
