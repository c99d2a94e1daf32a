"""Sites and their app installations, as the models are today.

One initial migration for the label ``metasite``, replacing the two the app had under its
first label, ``sites``. The tables keep their names, so on a database migrated then,
``migrate --fake-initial`` finds them and records this migration without running it;
``0002_adopt_the_sites_label`` then moves what remained under the old label.
"""

import uuid

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Site",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("name", models.CharField(max_length=200)),
                ("version", models.PositiveBigIntegerField(default=1, editable=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "owner",
                    models.ForeignKey(
                        blank=True,
                        help_text="The user who owns the site: they (or a user with the model permission) may change or delete it.",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="sites",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "sites_site",
                "ordering": ["name", "id"],
            },
        ),
        migrations.CreateModel(
            name="AppInstallation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "app_id",
                    models.CharField(
                        max_length=100,
                        validators=[
                            django.core.validators.RegexValidator(
                                "^[a-z0-9][a-z0-9._-]{0,99}$",
                                "lower-case letters, digits, '.', '_' or '-'",
                            )
                        ],
                    ),
                ),
                ("installed_at", models.DateTimeField()),
                ("settings", models.JSONField(blank=True, default=dict)),
                (
                    "site",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="apps",
                        to="metasite.site",
                    ),
                ),
            ],
            options={
                "db_table": "sites_appinstallation",
                "ordering": ["app_id"],
                "constraints": [
                    models.UniqueConstraint(fields=("site", "app_id"), name="site_app_unique")
                ],
            },
        ),
    ]
