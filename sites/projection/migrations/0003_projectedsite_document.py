"""Each projected site keeps the JSON document the read API serves for its version.

The projector writes it from now on; the sites projected before get theirs built here from
their rows, so the read API never meets a live site without one.
"""

from django.db import migrations, models

from ..documents import site_document, utc_text

CHUNK = 1000


def build_documents(apps, schema_editor):
    database = schema_editor.connection.alias
    sites = apps.get_model("installed_apps", "ProjectedSite").objects.using(database)
    installed = apps.get_model("installed_apps", "InstalledApp").objects.using(database)
    pending = sites.filter(deleted=False, document__isnull=True).order_by("generation", "site_id")
    while chunk := list(pending[:CHUNK]):
        for generation in {site.generation for site in chunk}:
            of_generation = [site for site in chunk if site.generation == generation]
            apps_of: dict = {site.site_id: [] for site in of_generation}
            rows = installed.filter(generation=generation, site_id__in=apps_of).order_by(
                "site_id", "app_id"
            )
            for site_id, app_id, installed_at in rows.values_list(
                "site_id", "app_id", "installed_at"
            ):
                apps_of[site_id].append((app_id, utc_text(installed_at)))
            for site in of_generation:
                site.document = site_document(
                    site_id=site.site_id,
                    version=site.version,
                    projected_at=utc_text(site.projected_at),
                    apps=apps_of[site.site_id],
                )
        sites.bulk_update(chunk, ["document"])


class Migration(migrations.Migration):
    dependencies = [("installed_apps", "0002_forget_the_sites_label")]

    operations = [
        migrations.AddField(
            model_name="projectedsite",
            name="document",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.RunPython(build_documents, migrations.RunPython.noop),
    ]
