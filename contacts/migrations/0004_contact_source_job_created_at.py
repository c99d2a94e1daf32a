from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0003_import_status"),
    ]

    operations = [
        # Left empty on the rows already there (no rewrite of a large table): an import
        # uploaded later still overwrites them; one uploaded earlier cannot be told apart.
        migrations.AddField(
            model_name="contact",
            name="source_job_created_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
