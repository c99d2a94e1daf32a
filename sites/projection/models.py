"""The installed-apps read model (``projections`` database, read from its replica).

Every model here belongs to the ``installed_apps`` app, which is all the router needs to
send it to the projections database. Every row carries a ``generation``: readers see only
the live generation, and a rebuild fills the next one beside it before switching (see
``sites.projection.generations``).

The tables keep the names they had when these models belonged to the ``sites`` app, so
databases created then keep their rows.
"""

from django.db import models


class ProjectionState(models.Model):
    """Which generation readers see, and which one a rebuild is filling (if any)."""

    name = models.CharField(max_length=100, primary_key=True)
    live_generation = models.PositiveIntegerField(default=1)
    building_generation = models.PositiveIntegerField(null=True, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)
    # The running rebuild keeps pushing this back (on the database's clock) while it works;
    # once it has passed, the rebuild is taken as dead: a SIGKILLed rebuild cannot say so.
    rebuild_lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "sites_projectionstate"

    def __str__(self) -> str:
        return f"{self.name}: live {self.live_generation}"


class ProjectedSite(models.Model):
    """The newest version of a site seen by the projector; ``deleted`` rows are tombstones
    that keep the version so an older, late event cannot bring a deleted site back."""

    pk = models.CompositePrimaryKey("generation", "site_id")
    generation = models.PositiveIntegerField()
    site_id = models.UUIDField()
    version = models.PositiveBigIntegerField()
    deleted = models.BooleanField(default=False)
    projected_at = models.DateTimeField()
    # What the read API serves for this version, built once by the projector (see
    # ``sites.projection.documents``); null for a tombstone.
    document = models.TextField(null=True, blank=True)

    class Meta:
        db_table = "sites_projectedsite"

    def __str__(self) -> str:
        return f"{self.site_id} v{self.version}"


class InstalledApp(models.Model):
    """One app installed on one site, as of ``site_version``."""

    # Site → apps, and the writer's conflict target. A natural key rather than a surrogate
    # id: one index and no sequence less to maintain on every projected row.
    pk = models.CompositePrimaryKey("generation", "site_id", "app_id")
    generation = models.PositiveIntegerField()
    site_id = models.UUIDField()
    app_id = models.CharField(max_length=100)
    installed_at = models.DateTimeField()
    site_version = models.PositiveBigIntegerField()

    class Meta:
        db_table = "sites_installedapp"
        indexes = [
            # App → sites, in site id order for keyset pagination.
            models.Index(fields=["generation", "app_id", "site_id"], name="installed_app_by_app"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id}:{self.app_id}"
