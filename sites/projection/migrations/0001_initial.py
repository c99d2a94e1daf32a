"""The installed-apps read model, as it is today (on the ``projections`` database only).

The first migration of the label ``installed_apps``; these models were created by the
``sites`` app's first migration before. The tables keep their names, so on a database
migrated then, ``migrate --fake-initial`` finds them and records this migration without
running it.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="ProjectedSite",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "site_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.PositiveIntegerField()),
                ("site_id", models.UUIDField()),
                ("version", models.PositiveBigIntegerField()),
                ("deleted", models.BooleanField(default=False)),
                ("projected_at", models.DateTimeField()),
            ],
            options={
                "db_table": "sites_projectedsite",
            },
        ),
        migrations.CreateModel(
            name="ProjectionState",
            fields=[
                ("name", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("live_generation", models.PositiveIntegerField(default=1)),
                ("building_generation", models.PositiveIntegerField(blank=True, null=True)),
                ("switched_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "sites_projectionstate",
            },
        ),
        migrations.CreateModel(
            name="InstalledApp",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "generation",
                        "site_id",
                        "app_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("generation", models.PositiveIntegerField()),
                ("site_id", models.UUIDField()),
                ("app_id", models.CharField(max_length=100)),
                ("installed_at", models.DateTimeField()),
                ("site_version", models.PositiveBigIntegerField()),
            ],
            options={
                "db_table": "sites_installedapp",
                "indexes": [
                    models.Index(
                        fields=["generation", "app_id", "site_id"], name="installed_app_by_app"
                    )
                ],
            },
        ),
    ]
