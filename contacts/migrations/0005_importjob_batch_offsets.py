from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_contact_source_job_created_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="importjob",
            name="batch_offsets",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
