"""The installed-apps read model (``projections`` database, read from its replica).

Every row carries a ``generation``: readers see only the live generation, and a rebuild
fills the next one beside it before switching (see ``sites.projection.generations``).
"""

from django.db import models


class ProjectionModel:
    """Marks a model for the projections database (see ``eventplatform.routers``).

    A base class rather than a bare attribute so the migrations' historical models carry
    the mark too: the router sees those, not these classes, when it decides where to
    create the tables.
    """

    _projection = True


class ProjectionState(ProjectionModel, models.Model):
    """Which generation readers see, and which one a rebuild is filling (if any)."""

    name = models.CharField(max_length=100, primary_key=True)
    live_generation = models.PositiveIntegerField(default=1)
    building_generation = models.PositiveIntegerField(null=True, blank=True)
    switched_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: live {self.live_generation}"


class ProjectedSite(ProjectionModel, models.Model):
    """The newest version of a site seen by the projector; ``deleted`` rows are tombstones
    that keep the version so an older, late event cannot bring a deleted site back."""

    pk = models.CompositePrimaryKey("generation", "site_id")
    generation = models.PositiveIntegerField()
    site_id = models.UUIDField()
    version = models.PositiveBigIntegerField()
    deleted = models.BooleanField(default=False)
    projected_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.site_id} v{self.version}"


class InstalledApp(ProjectionModel, models.Model):
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
        indexes = [
            # App → sites, in site id order for keyset pagination.
            models.Index(fields=["generation", "app_id", "site_id"], name="installed_app_by_app"),
        ]

    def __str__(self) -> str:
        return f"{self.site_id}:{self.app_id}"
