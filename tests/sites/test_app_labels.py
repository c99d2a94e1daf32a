"""The sites apps' labels: nothing in Django collides with them, and databases migrated
under the old label (``sites``) keep their rows and permissions.

``legacy_layout/<vendor>/*.sql`` are dumps of both databases as the code before the new
labels migrated them (commit 80cbd11, ``manage.py migrate`` on each database; PostgreSQL's
by ``pg_dump --inserts --no-owner --no-privileges``), holding one user, ``olive``, granted
``sites.change_site`` directly and ``sites.delete_site`` through a group, one site she owns
with the app ``blog`` installed, and its projection. Each test migrates databases of its
own in child processes, as ``runplatform`` does (``migrate --fake-initial``), so the
session's databases stay as they are. PostgreSQL is used when the session runs on it.
"""

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from ..conftest import ROOT

LEGACY_LAYOUT = Path(__file__).parent / "legacy_layout"
DATABASES = ("default", "projections")
URL_VARIABLES = {"default": "DATABASE_URL", "projections": "PROJECTIONS_DATABASE_URL"}
WITH_CONTRIB_SITES = "tests.sites.contrib_sites_settings"
VENDORS = ["sqlite"] + (
    ["postgresql"] if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else []
)

#: What a user of the migrated databases sees: olive's permissions, the sites with their
#: owners and apps, the projection (rows and served documents), and under which labels
#: migrations are recorded.
REPORT = """
import json
from django.contrib.auth.models import User
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from sites.models import Site
from sites.projection.models import InstalledApp, ProjectedSite

DATABASES = ("default", "projections")

olive = User.objects.get(username="olive")
migrations = {db: MigrationRecorder(connections[db]).migration_qs for db in DATABASES}
print(json.dumps({
    "permissions": sorted(olive.get_all_permissions()),
    "sites": [[s.name, s.owner_name, [a.app_id for a in s.apps.all()]] for s in Site.objects.all()],
    "projected": list(InstalledApp.objects.values_list("app_id", flat=True)),
    "documents": [
        [app["app_id"] for app in json.loads(document)["apps"]]
        for document in ProjectedSite.objects.values_list("document", flat=True)
    ],
    "labels": {db: sorted(set(qs.values_list("app", flat=True))) for db, qs in migrations.items()},
}))
"""


class DatabasePair:
    """A default and a projections database of a test's own, with ``manage.py`` on them."""

    def __init__(self, urls: dict[str, str], vendor: str):
        self.urls = urls
        self.vendor = vendor

    def manage(self, *args: str, settings: str = "eventplatform.settings"):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings}
        env.update({URL_VARIABLES[db]: url for db, url in self.urls.items()})
        env.pop("PROJECTIONS_REPLICA_DATABASE_URL", None)  # the replica mirrors projections
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def migrate(self, settings: str = "eventplatform.settings") -> list[str]:
        """Migrate both databases as the platform does; returns each one's output."""
        outputs = []
        for database in DATABASES:
            result = self.manage(
                "migrate", "--fake-initial", "--database", database, settings=settings
            )
            assert result.returncode == 0, result.stdout + result.stderr
            outputs.append(result.stdout)
        return outputs

    def restore_legacy_layout(self) -> None:
        for database in DATABASES:
            script = (LEGACY_LAYOUT / self.vendor / f"{database}.sql").read_text()
            with self.connect(database) as connection:
                if self.vendor == "sqlite":
                    connection.executescript(script)
                else:
                    connection.execute(script)

    def rows(self, database: str, query: str) -> list[tuple]:
        with self.connect(database) as connection:
            return [tuple(row) for row in connection.execute(query).fetchall()]

    def connect(self, database: str):
        url = self.urls[database]
        if self.vendor == "sqlite":
            return sqlite3.connect(url.removeprefix("sqlite:///"))
        return psycopg.connect(url.replace("postgres://", "postgresql://", 1))

    def report(self) -> dict:
        result = self.manage("shell", "--no-imports", "-c", REPORT)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


@contextmanager
def postgresql_pair() -> Iterator[dict[str, str]]:
    """Two new, empty databases on the session's PostgreSQL server, dropped afterwards."""
    server = settings.DATABASES["default"]
    password = f":{server['PASSWORD']}" if server.get("PASSWORD") else ""
    base = f"postgres://{server['USER']}{password}@{server['HOST']}:{server['PORT']}"
    names = {db: f"labels_{uuid.uuid4().hex[:12]}_{db}" for db in DATABASES}
    maintenance = psycopg.connect(f"{base.replace('postgres://', 'postgresql://')}/postgres")
    maintenance.autocommit = True
    try:
        for name in names.values():
            maintenance.execute(f'CREATE DATABASE "{name}"')
        yield {db: f"{base}/{name}" for db, name in names.items()}
    finally:
        for name in names.values():
            maintenance.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        maintenance.close()


def sqlite_pair(directory: Path) -> DatabasePair:
    urls = {db: f"sqlite:///{directory / f'{db}.sqlite3'}" for db in DATABASES}
    return DatabasePair(urls, "sqlite")


@pytest.fixture(params=VENDORS)
def databases(request, tmp_path) -> Iterator[DatabasePair]:
    if request.param == "sqlite":
        yield sqlite_pair(tmp_path)
        return
    with postgresql_pair() as urls:
        yield DatabasePair(urls, "postgresql")


@pytest.fixture
def sqlite_databases(tmp_path) -> DatabasePair:
    return sqlite_pair(tmp_path)


def test_a_database_migrated_under_the_old_label_keeps_its_sites_and_permissions(databases):
    databases.restore_legacy_layout()
    default, projections = databases.migrate()
    assert "metasite.0001_initial... FAKED" in default
    assert "installed_apps.0001_initial... FAKED" in projections

    seen = databases.report()
    assert seen["permissions"] == ["metasite.change_site", "metasite.delete_site"]
    assert seen["sites"] == [["Olive's shop", "olive", ["blog"]]]
    assert seen["projected"] == ["blog"]
    # The read API's stored document is built for what was projected before it existed.
    assert seen["documents"] == [["blog"]]
    for labels in seen["labels"].values():
        assert "sites" not in labels
        assert {"metasite", "installed_apps"} <= set(labels)

    # Migrated once, it is like any other database: nothing more to do.
    assert all("No migrations to apply" in output for output in databases.migrate())


def test_django_contrib_sites_installs_beside_the_platform(databases):
    check = databases.manage("check", settings=WITH_CONTRIB_SITES)
    assert check.returncode == 0, check.stderr
    databases.migrate(settings=WITH_CONTRIB_SITES)

    assert databases.rows("default", "SELECT domain FROM django_site") == [("example.com",)]
    assert databases.rows(
        "default",
        "SELECT app_label FROM django_content_type WHERE model = 'site' ORDER BY app_label",
    ) == [("metasite",), ("sites",)]
    assert databases.rows("default", "SELECT count(*) FROM sites_site") == [(0,)]
    assert databases.rows("projections", "SELECT count(*) FROM sites_installedapp") == [(0,)]


def test_an_old_database_takes_django_contrib_sites_once_migrated_without_it(sqlite_databases):
    sqlite_databases.restore_legacy_layout()
    refused = sqlite_databases.manage("migrate", "--fake-initial", settings=WITH_CONTRIB_SITES)
    assert refused.returncode == 1
    assert "(metasite.E001) database 'default' still records" in refused.stderr

    sqlite_databases.migrate()
    sqlite_databases.migrate(settings=WITH_CONTRIB_SITES)
    assert sqlite_databases.rows("default", "SELECT domain FROM django_site") == [("example.com",)]
    assert sqlite_databases.rows("default", "SELECT name FROM sites_site") == [("Olive's shop",)]
