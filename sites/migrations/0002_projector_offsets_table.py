"""Make sure the projector's stored offsets have a table in the projections database.

``eventplatform``'s migration creates ``ConsumerOffset`` there only if the router
recognises it, and the router reads a marker attribute that historical models lack, so
on a fresh database the table is missing. This creates it when (and only when) it is
absent, so it stays correct once the router resolves the real model.
"""

from django.db import migrations


def create_offsets_table(apps, schema_editor):
    offsets = apps.get_model("eventplatform", "ConsumerOffset")
    if offsets._meta.db_table not in schema_editor.connection.introspection.table_names():
        schema_editor.create_model(offsets)


class Migration(migrations.Migration):
    dependencies = [
        ("eventplatform", "0001_initial"),
        ("sites", "0001_initial"),
    ]

    operations = [
        # The hint routes this step like a projection model: it runs on projections only.
        migrations.RunPython(
            create_offsets_table, migrations.RunPython.noop, hints={"model_name": "installedapp"}
        ),
    ]
