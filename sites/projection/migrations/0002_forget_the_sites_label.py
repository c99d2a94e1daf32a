"""Forget the migration records the projections database kept under the label ``sites``.

The projection's models belonged to an app labelled ``sites`` before they became the app
``installed_apps``; ``migrate --fake-initial`` records this app's initial migration on a
database migrated then. The old records are deleted as on the default database (see the
``metasite`` app's ``0002_adopt_the_sites_label``), recognised by the old label's last
migration, a name ``django.contrib.sites`` does not have.
"""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder

OLD_LABEL = "sites"
OLD_MIGRATIONS = ("0001_initial", "0002_site_owner_user")


def forget_the_sites_label(apps, schema_editor):
    recorded = MigrationRecorder(schema_editor.connection).migration_qs.filter(app=OLD_LABEL)
    if recorded.filter(name=OLD_MIGRATIONS[-1]).exists():
        recorded.filter(name__in=OLD_MIGRATIONS).delete()


class Migration(migrations.Migration):
    dependencies = [("installed_apps", "0001_initial")]

    operations = [migrations.RunPython(forget_the_sites_label, migrations.RunPython.noop)]
