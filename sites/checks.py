"""A database still recording the app's first label cannot take ``django.contrib.sites``.

Before the label ``metasite``, this app was labelled ``sites``, and a database migrated then
records migrations under that label until ``migrate`` deletes those records (migration
``metasite.0002``). ``django.contrib.sites`` has the label ``sites`` and a migration
``0001_initial`` too: added in the same ``migrate``, it would be taken for migrated and its
table never created. This check (run by ``migrate`` on the database it migrates) stops
that ``migrate`` first.
"""

from django.apps import apps
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

OLD_LABEL = "sites"
OLD_LAST_MIGRATION = "0002_site_owner_user"


@register(Tags.database)
def old_label_beside_contrib_sites(app_configs=None, databases=None, **kwargs) -> list[Error]:
    if not databases or not apps.is_installed("django.contrib.sites"):
        return []
    return [
        Error(
            f"database {alias!r} still records this platform's migrations under the label "
            f"{OLD_LABEL!r}, which django.contrib.sites also uses",
            hint="run 'manage.py migrate --fake-initial' once without django.contrib.sites "
            "in INSTALLED_APPS (it moves them to 'metasite'), then add it",
            id="metasite.E001",
        )
        for alias in databases
        if _records_old_label(alias)
    ]


def _records_old_label(alias: str) -> bool:
    recorder = MigrationRecorder(connections[alias])
    try:
        return (
            recorder.has_table()
            and recorder.migration_qs.filter(app=OLD_LABEL, name=OLD_LAST_MIGRATION).exists()
        )
    except DatabaseError:
        return False  # an unreachable database is reported by the command that needs it
