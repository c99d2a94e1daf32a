"""The MetaSite source of truth (``default`` database).

A site's ``version`` grows by one on every change; each change publishes the site's full
snapshot with that version, which is what lets consumers ignore stale or repeated events.
The projection built from those events is another app: ``sites.projection``.

The tables keep the names the app's first label (``sites``) gave them, so databases created
under it keep their rows (see ``sites.apps``).
"""

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from .events import APP_ID_PATTERN


class Site(models.Model):
    """A site and its metadata. Change it only through ``sites.services``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    # PROTECT: deleting a user must not silently change a site without publishing its event;
    # transfer the user's sites first. Null only for sites whose free-text owner of the
    # past matched no user: those are managed by users with the model permissions.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sites",
        help_text="The user who owns the site: they (or a user with the model permission) "
        "may change or delete it.",
    )
    version = models.PositiveBigIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "sites_site"
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def owner_name(self) -> str:
        """The owner's username, as published in events and shown by the API ("" if none)."""
        return self.owner.get_username() if self.owner_id else ""


class AppInstallation(models.Model):
    """An app installed on a site, with its per-install settings."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="apps")
    app_id = models.CharField(
        max_length=100,
        validators=[RegexValidator(APP_ID_PATTERN, "lower-case letters, digits, '.', '_' or '-'")],
    )
    installed_at = models.DateTimeField()
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "sites_appinstallation"
        ordering = ["app_id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "app_id"], name="site_app_unique"),
        ]

    def __str__(self) -> str:
        return self.app_id
