"""Two projectors writing the same site at once (a rebuild beside the live projector, or a
partition's old and new owner during a rebalance): the newer version's apps, and only
those, remain."""

import threading
import uuid

from django.db import connections, transaction

from eventplatform.routers import PROJECTIONS
from sites.events import SiteChange
from sites.projection.models import InstalledApp
from sites.projection.writer import project
from tests.helpers import wait_until

from .conftest import all_databases

pytestmark = all_databases

GENERATION = 1
INSTALLED_AT = "2024-05-01T00:00:00+00:00"


def _change(site_id: uuid.UUID, version: int, app_id: str) -> SiteChange:
    return SiteChange(
        site_id=site_id, version=version, deleted=False, apps=((app_id, INSTALLED_AT),)
    )


def _writers_waiting_on_a_lock() -> int:
    with connections[PROJECTIONS].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_writer_that_waited_for_another_replaces_the_apps_that_one_committed():
    site = uuid.uuid4()
    older_written, older_may_commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def write(change: SiteChange, *, hold: bool) -> None:
        try:
            with transaction.atomic(using=PROJECTIONS):
                project(changes=[change], generations=[GENERATION])
                if hold:
                    older_written.set()
                    older_may_commit.wait(30)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)
        finally:
            connections[PROJECTIONS].close()

    older = threading.Thread(target=write, args=(_change(site, 5, "app-a"),), kwargs={"hold": True})
    older.start()
    assert older_written.wait(30)
    newer = threading.Thread(
        target=write, args=(_change(site, 7, "app-b"),), kwargs={"hold": False}
    )
    newer.start()
    # The newer write waits for the older one's uncommitted site row, then goes on.
    wait_until(lambda: _writers_waiting_on_a_lock() == 1, message="the newer write never waited")
    older_may_commit.set()
    older.join(30)
    newer.join(30)
    assert not errors
    rows = InstalledApp.objects.using(PROJECTIONS).filter(generation=GENERATION, site_id=site)
    assert sorted(rows.values_list("app_id", "site_version")) == [("app-b", 7)]
