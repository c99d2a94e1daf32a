"""The sites apps' labels: nothing in Django collides with them, and databases migrated
under the old label (``sites``) keep their rows and permissions.

``legacy_layout/*.sql`` are SQLite dumps of both databases as the code before the new
labels migrated them (commit 80cbd11, ``manage.py migrate`` on each database), holding one
user, ``olive``, granted ``sites.change_site`` directly and ``sites.delete_site`` through a
group, one site she owns with the app ``blog`` installed, and its projection. Each test
migrates its own SQLite files in a child process, as ``runplatform`` does (``migrate
--fake-initial``), so the session's databases stay as they are.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT

LEGACY_LAYOUT = Path(__file__).parent / "legacy_layout"
DATABASES = ("default", "projections")
WITH_CONTRIB_SITES = "tests.sites.contrib_sites_settings"

#: What a user of the migrated database sees: olive's permissions, the sites with their
#: owners and apps, the projection, and under which labels migrations are recorded.
REPORT = """
import json
from django.contrib.auth.models import User
from django.db import connections
from django.db.migrations.recorder import MigrationRecorder
from sites.models import Site
from sites.projection.models import InstalledApp

DATABASES = ("default", "projections")

olive = User.objects.get(username="olive")
migrations = {db: MigrationRecorder(connections[db]).migration_qs for db in DATABASES}
print(json.dumps({
    "permissions": sorted(olive.get_all_permissions()),
    "sites": [[s.name, s.owner_name, [a.app_id for a in s.apps.all()]] for s in Site.objects.all()],
    "projected": list(InstalledApp.objects.values_list("app_id", flat=True)),
    "labels": {db: sorted(set(qs.values_list("app", flat=True))) for db, qs in migrations.items()},
}))
"""


def manage(databases_dir: Path, *args: str, settings: str = "eventplatform.settings"):
    """``manage.py ARGS`` on the SQLite databases in ``databases_dir``."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": f"sqlite:///{databases_dir / 'default.sqlite3'}",
        "PROJECTIONS_DATABASE_URL": f"sqlite:///{databases_dir / 'projections.sqlite3'}",
    }
    env.pop("PROJECTIONS_REPLICA_DATABASE_URL", None)  # the replica then mirrors projections
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def migrate(databases_dir: Path, settings: str = "eventplatform.settings") -> list[str]:
    """Migrate both databases as the platform does; returns each one's output."""
    outputs = []
    for database in DATABASES:
        result = manage(
            databases_dir, "migrate", "--fake-initial", "--database", database, settings=settings
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outputs.append(result.stdout)
    return outputs


def restore_legacy_layout(databases_dir: Path) -> None:
    for database in DATABASES:
        with sqlite3.connect(databases_dir / f"{database}.sqlite3") as connection:
            connection.executescript((LEGACY_LAYOUT / f"{database}.sql").read_text())


def report(databases_dir: Path) -> dict:
    result = manage(databases_dir, "shell", "--no-imports", "-c", REPORT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_database_migrated_under_the_old_label_keeps_its_sites_and_permissions(tmp_path):
    restore_legacy_layout(tmp_path)
    default, projections = migrate(tmp_path)
    assert "metasite.0001_initial... FAKED" in default
    assert "installed_apps.0001_initial... FAKED" in projections

    seen = report(tmp_path)
    assert seen["permissions"] == ["metasite.change_site", "metasite.delete_site"]
    assert seen["sites"] == [["Olive's shop", "olive", ["blog"]]]
    assert seen["projected"] == ["blog"]
    for labels in seen["labels"].values():
        assert "sites" not in labels
        assert {"metasite", "installed_apps"} <= set(labels)

    # Migrated once, it is like any other database: nothing more to do.
    assert all("No migrations to apply" in output for output in migrate(tmp_path))


def test_django_contrib_sites_installs_beside_the_platform(tmp_path):
    check = manage(tmp_path, "check", settings=WITH_CONTRIB_SITES)
    assert check.returncode == 0, check.stderr
    migrate(tmp_path, settings=WITH_CONTRIB_SITES)

    with sqlite3.connect(tmp_path / "default.sqlite3") as connection:
        assert connection.execute("SELECT domain FROM django_site").fetchall() == [("example.com",)]
        labels = connection.execute(
            "SELECT app_label FROM django_content_type WHERE model = 'site' ORDER BY app_label"
        ).fetchall()
        assert labels == [("metasite",), ("sites",)]
        assert connection.execute("SELECT count(*) FROM sites_site").fetchone() == (0,)
    with sqlite3.connect(tmp_path / "projections.sqlite3") as connection:
        assert connection.execute("SELECT count(*) FROM sites_installedapp").fetchone() == (0,)


def test_an_old_database_takes_django_contrib_sites_once_migrated_without_it(tmp_path):
    restore_legacy_layout(tmp_path)
    refused = manage(tmp_path, "migrate", "--fake-initial", settings=WITH_CONTRIB_SITES)
    assert refused.returncode == 1
    assert "(metasite.E001) database 'default' still records" in refused.stderr

    migrate(tmp_path)
    migrate(tmp_path, settings=WITH_CONTRIB_SITES)
    with sqlite3.connect(tmp_path / "default.sqlite3") as connection:
        assert connection.execute("SELECT domain FROM django_site").fetchall() == [("example.com",)]
        assert connection.execute("SELECT name FROM sites_site").fetchall() == [("Olive's shop",)]
