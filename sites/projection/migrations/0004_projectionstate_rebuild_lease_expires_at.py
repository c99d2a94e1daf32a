from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("installed_apps", "0003_projectedsite_document"),
    ]

    operations = [
        migrations.AddField(
            model_name="projectionstate",
            name="rebuild_lease_expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
