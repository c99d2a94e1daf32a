"""Prometheus figures. Modules add gauges read at scrape time with :func:`on_scrape`."""

from collections.abc import Callable

from django.db import DatabaseError, InterfaceError
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Gauge, generate_latest

from . import replica

_scrape_hooks: list[Callable[[], None]] = []

outbox_pending = Gauge("eventplatform_outbox_pending", "Outbox rows not yet sent to Kafka")
outbox_set_aside = Gauge(
    "eventplatform_outbox_set_aside", "Outbox rows the broker refused for good, kept to resend"
)
projections_replica_lag = Gauge(
    "eventplatform_projections_replica_lag_seconds",
    "Seconds the projections replica's replay is behind its primary (NaN: unreachable)",
)


def on_scrape(hook: Callable[[], None]) -> Callable[[], None]:
    """Register a function that refreshes gauges just before each scrape."""
    _scrape_hooks.append(hook)
    return hook


@on_scrape
def _outbox_pending() -> None:
    from .models import OutboxEvent

    unsent = OutboxEvent.objects.filter(sent_at__isnull=True)
    outbox_pending.set(unsent.filter(set_aside_at__isnull=True).count())
    outbox_set_aside.set(unsent.filter(set_aside_at__isnull=False).count())


@on_scrape
def _projections_replica_lag() -> None:
    try:
        projections_replica_lag.set(replica.lag_seconds())
    except (DatabaseError, InterfaceError):
        # An unreachable replica must not take the other figures down with it.
        replica.reset_after_failure()
        projections_replica_lag.set(float("nan"))


def render() -> tuple[bytes, str]:
    for hook in _scrape_hooks:
        hook()
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
