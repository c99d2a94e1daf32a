from django.db import migrations, models
from django.db.models.functions import Coalesce


def backfill_failed_at(apps, schema_editor):
    """Failed before the time was recorded: its last progress is the best guess, so the
    retention of its upload does not start from the upload itself."""
    jobs = apps.get_model("contacts", "ImportJob").objects.using(schema_editor.connection.alias)
    jobs.exclude(failure="").filter(failed_at__isnull=True).update(
        failed_at=Coalesce("progressed_at", "created_at")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0005_importjob_batch_offsets"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="failed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(backfill_failed_at, migrations.RunPython.noop),
    ]
