"""The sites app's long-running consumers (``manage.py consume --list`` shows them)."""

from eventplatform.kafka.registry import register

from .projection.consumer import InstalledAppsProjector

register(
    InstalledAppsProjector,
    description="sites.metadata → installed-apps read model (projections database)",
)
