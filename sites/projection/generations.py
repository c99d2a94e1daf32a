"""Generations of the projection: readers see the live one, a rebuild fills the next.

The state row says which generation is live and which one (if any) a rebuild is filling.
The projector writes every batch into both, so a rebuild that replays the topic up to its
end and then switches can never miss an event that arrived meanwhile. Each batch reads the
state under a share lock, so a switch waits for in-flight batches and no batch writes into
a generation that is being purged.

A rebuild holds a lease it renews while it runs (on the database's clock, so processes on
different hosts agree). Once a renewal is late by the whole lease, the rebuild is dead to
everyone: batches stop writing into its generation, the live projector purges it, and the
rebuild itself (if it was only stalled) can neither renew nor switch, since its generation
may have missed batches meanwhile.
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import connections, transaction
from django.db.models import BooleanField, DateTimeField, ExpressionWrapper, Q
from django.db.models.functions import Now
from django.db.models.query import RawQuerySet
from django.utils import timezone

from eventplatform.routers import PROJECTIONS

from .announcements import announce_switch
from .models import InstalledApp, ProjectedSite, ProjectionState

STATE = "installed_apps"
PURGE_CHUNK = 5000

logger = logging.getLogger("sites.projection")


class RebuildSuperseded(RuntimeError):
    """Another rebuild started after this one: its generation will never go live."""


class RebuildLeaseLapsed(RebuildSuperseded):
    """The rebuild did not renew its lease in time, so its generation may lack batches."""


def target_generations() -> tuple[int, ...]:
    """The generations a projector batch writes into: the live one and any being built.

    Call inside the batch's transaction on ``projections``.
    """
    state = _state(lock="FOR SHARE")
    if state.building_generation is None or state.rebuild_lapsed:
        return (state.live_generation,)
    return (state.live_generation, state.building_generation)


def live_generation() -> int:
    """The generation readers currently see (read from the primary)."""
    return _state(lock=None).live_generation


def start_rebuild() -> int:
    """Claim the next generation for a rebuild (abandoning any unfinished one) and return it."""
    with transaction.atomic(using=PROJECTIONS):
        state = _state(lock="FOR UPDATE")
        generation = max(state.live_generation, state.building_generation or 0) + 1
        ProjectionState.objects.using(PROJECTIONS).filter(name=STATE).update(
            building_generation=generation, rebuild_renewed_at=Now()
        )
    purge_stale_generations()
    return generation


def renew_rebuild(generation: int) -> bool:
    """Renew the lease of the rebuild of ``generation``; False once it lapsed (or another
    rebuild took over): a lapsed lease is never renewed."""
    renewed = (
        ProjectionState.objects.using(PROJECTIONS)
        .filter(name=STATE, building_generation=generation, rebuild_renewed_at__gte=_lease_start())
        .update(rebuild_renewed_at=Now())
    )
    return renewed == 1


def drop_lapsed_rebuild() -> bool:
    """Stop building a generation whose rebuild's lease lapsed (it was killed, say) and
    purge it; True if there was one."""
    state = _state(lock=None)
    if state.building_generation is None or not state.rebuild_lapsed:
        return False
    with transaction.atomic(using=PROJECTIONS):
        state = _state(lock="FOR UPDATE")
        if state.building_generation is None or not state.rebuild_lapsed:
            return False
        ProjectionState.objects.using(PROJECTIONS).filter(name=STATE).update(
            building_generation=None
        )
    purged = purge_stale_generations()
    logger.warning(
        "rebuild abandoned: its lease lapsed",
        extra={"generation": state.building_generation, "purged_rows": purged},
    )
    return True


def abandon_rebuild(generation: int) -> None:
    """Stop building ``generation`` (if it still is) and purge what it wrote: until then the
    live projector would write every batch into it too, for nothing."""
    with transaction.atomic(using=PROJECTIONS):
        state = _state(lock="FOR UPDATE")
        if state.building_generation == generation:
            ProjectionState.objects.using(PROJECTIONS).filter(name=STATE).update(
                building_generation=None
            )
    purge_stale_generations()


def switch_to(generation: int) -> None:
    """Make a fully built ``generation`` live in one transaction, then purge the old one."""
    with transaction.atomic(using=PROJECTIONS):
        state = _state(lock="FOR UPDATE")
        if state.building_generation != generation:
            raise RebuildSuperseded(
                f"generation {generation} is no longer being built "
                f"(now {state.building_generation}); not switching"
            )
        if state.rebuild_lapsed:
            raise RebuildLeaseLapsed(
                f"the rebuild of generation {generation} did not renew its lease within "
                f"{settings.PROJECTION_REBUILD_LEASE_SECONDS:g} s; not switching"
            )
        ProjectionState.objects.using(PROJECTIONS).filter(name=STATE).update(
            live_generation=generation, building_generation=None, switched_at=timezone.now()
        )
        # Once committed, web processes drop every copy they hold of the old generation.
        transaction.on_commit(partial(announce_switch, generation), using=PROJECTIONS, robust=True)
    purge_stale_generations()


def purge_stale_generations() -> int:
    """Delete, a chunk at a time, rows of generations that are neither live nor building."""
    state = _state(lock=None)
    keep = {state.live_generation, state.building_generation} - {None}
    purged = 0
    for model in (InstalledApp, ProjectedSite):
        rows = model.objects.using(PROJECTIONS)
        while chunk := list(
            rows.exclude(generation__in=keep).values_list("generation", "site_id")[:PURGE_CHUNK]
        ):
            for generation in {g for g, _ in chunk}:
                site_ids = {s for g, s in chunk if g == generation}
                purged += rows.filter(generation=generation, site_id__in=site_ids).delete()[0]
    return purged


def _lease_start():
    """The oldest renewal still inside the lease, on the database's clock."""
    lease = timedelta(seconds=settings.PROJECTION_REBUILD_LEASE_SECONDS)
    return ExpressionWrapper(Now() - lease, output_field=DateTimeField())


def _state(*, lock: str | None) -> ProjectionState:
    """The state row, with ``rebuild_lapsed``: whether a rebuild's lease (if any) lapsed."""
    lapsed = ExpressionWrapper(
        Q(rebuild_renewed_at__isnull=True) | Q(rebuild_renewed_at__lt=_lease_start()),
        output_field=BooleanField(),
    )
    states = ProjectionState.objects.using(PROJECTIONS).filter(name=STATE)
    if lock == "FOR UPDATE":
        states = states.select_for_update()
    elif lock == "FOR SHARE" and connections[PROJECTIONS].vendor == "postgresql":
        # Django has no share lock; SQLite needs none (it runs one writer at a time).
        states = ProjectionState.objects.using(PROJECTIONS).raw(
            f"SELECT *, (rebuild_renewed_at IS NULL OR rebuild_renewed_at < "
            f"statement_timestamp() - make_interval(secs => %s)) AS rebuild_lapsed "
            f"FROM {ProjectionState._meta.db_table} WHERE name = %s FOR SHARE",
            [settings.PROJECTION_REBUILD_LEASE_SECONDS, STATE],
        )
    if not isinstance(states, RawQuerySet):
        states = states.annotate(rebuild_lapsed=lapsed)
    state = next(iter(states), None)
    if state is None:
        ProjectionState.objects.using(PROJECTIONS).get_or_create(name=STATE)
        return _state(lock=lock)
    return state
