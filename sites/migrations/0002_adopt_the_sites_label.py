"""Move what a database recorded under the app's first label, ``sites``, to the new ones.

Until the projection became an app of its own and this app took the label ``metasite``,
both were one app labelled ``sites``. A database migrated then already has the tables
(their names are kept: ``migrate --fake-initial`` records the new initial migrations
without touching them) and two kinds of rows under the old label, which this step moves:

- the content types, and with them every permission, user and group grant and admin log
  entry that points at one: sites and app installations go to ``metasite``, the
  projection's models to ``installed_apps``;
- the old label's migration records, which are deleted: ``django.contrib.sites`` has the
  label ``sites`` and a migration ``0001_initial`` too, and would be taken for migrated.

Such a database is recognised by the record of the old label's last migration,
``sites.0002_site_owner_user``, a name ``django.contrib.sites`` does not have; on any other
database this step changes nothing.
"""

from django.db import migrations
from django.db.migrations.recorder import MigrationRecorder

OLD_LABEL = "sites"
OLD_MIGRATIONS = ("0001_initial", "0002_site_owner_user")
NEW_LABEL_OF_MODEL = {
    "site": "metasite",
    "appinstallation": "metasite",
    "installedapp": "installed_apps",
    "projectedsite": "installed_apps",
    "projectionstate": "installed_apps",
}


def adopt_the_sites_label(apps, schema_editor):
    recorded = MigrationRecorder(schema_editor.connection).migration_qs.filter(app=OLD_LABEL)
    names = set(recorded.values_list("name", flat=True))
    content_types = apps.get_model("contenttypes", "ContentType").objects.db_manager(
        schema_editor.connection.alias
    )
    if OLD_MIGRATIONS[-1] not in names:
        # Only this app ever had an "appinstallation" under the old label.
        if names and content_types.filter(app_label=OLD_LABEL, model="appinstallation").exists():
            raise RuntimeError(
                "this database was migrated by an older release whose sites app had not "
                f"reached migration {OLD_LABEL}.{OLD_MIGRATIONS[-1]}: migrate it with that "
                "release first"
            )
        return
    for model, new_label in NEW_LABEL_OF_MODEL.items():
        if not content_types.filter(app_label=new_label, model=model).exists():
            content_types.filter(app_label=OLD_LABEL, model=model).update(app_label=new_label)
    recorded.filter(name__in=OLD_MIGRATIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metasite", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(adopt_the_sites_label, migrations.RunPython.noop)]
