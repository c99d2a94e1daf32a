"""``Site.owner`` becomes a user: the old free text is matched to a username, else an email.

A text that matches no user (or several by email) leaves the site without an owner: only
users with the model permissions may then change it, until someone assigns one.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def owners_to_users(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    for site in Site.objects.exclude(owner_text="").iterator():
        text = site.owner_text.strip()
        user = User.objects.filter(username=text).first()
        if user is None:
            by_email = list(User.objects.filter(email__iexact=text)[:2])
            user = by_email[0] if len(by_email) == 1 else None
        if user is not None:
            Site.objects.filter(pk=site.pk).update(owner=user)


def users_to_owners(apps, schema_editor):
    Site = apps.get_model("sites", "Site")
    for site in Site.objects.select_related("owner").iterator():
        owner_text = site.owner.username if site.owner_id else ""
        Site.objects.filter(pk=site.pk).update(owner_text=owner_text)


class Migration(migrations.Migration):
    dependencies = [
        ("sites", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RenameField("site", "owner", "owner_text"),
        migrations.AlterField(
            "site", "owner_text", models.CharField(max_length=200, blank=True, default="")
        ),
        migrations.AddField(
            model_name="site",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                help_text="The user who owns the site: they (or a user with the model permission) may change or delete it.",
                on_delete=django.db.models.deletion.PROTECT,
                related_name="sites",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(owners_to_users, users_to_owners),
        migrations.RemoveField("site", "owner_text"),
    ]
