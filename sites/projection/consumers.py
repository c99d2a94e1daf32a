"""The installed-apps projection's long-running consumer (``manage.py consume --list``)."""

from eventplatform.kafka.registry import register

from .consumer import InstalledAppsProjector

register(
    InstalledAppsProjector,
    description="sites.metadata → installed-apps read model (projections database)",
)
