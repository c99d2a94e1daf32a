"""Generations of the projection: readers see the live one, a rebuild fills the next.

The state row says which generation is live and which one (if any) a rebuild is filling.
The projector writes every batch into both, so a rebuild that replays the topic up to its
end and then switches can never miss an event that arrived meanwhile. Each batch reads the
state under a share lock, so a switch waits for in-flight batches and no batch writes into
a generation that is being purged.

A rebuild holds a lease, which it renews while it works until an expiry on the database's
clock (so processes on different hosts agree). Once the lease expired, the rebuild is dead
to everyone: batches stop writing into its generation, the live projector purges it, and
the rebuild itself (killed, or only stalled) can neither renew nor switch, since its
generation may have missed batches meanwhile. Its number stays taken (the next rebuild
takes the one after it), so no later rebuild, nor its consumer group, is mistaken for it.
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import OperationalError, connections, transaction
from django.db.models import DateTimeField, ExpressionWrapper
from django.db.models.functions import Now
from django.utils import timezone

from eventplatform.routers import PROJECTIONS

from .announcements import announce_switch
from .models import InstalledApp, ProjectedSite, ProjectionState

STATE = "installed_apps"
PURGE_CHUNK = 5000
#: How long purging a dead rebuild waits for a row its stalled process still holds.
LAPSED_PURGE_LOCK_TIMEOUT_MS = 200
#: How long a rebuild's transaction may sit idle (its process paused inside it) before
#: PostgreSQL ends it, releasing the rows the live projector needs.
IDLE_TRANSACTION_SECONDS = 10.0

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
    building = _running_rebuild(state)
    if building is None:
        return (state.live_generation,)
    return (state.live_generation, building)


def live_generation() -> int:
    """The generation readers currently see (read from the primary)."""
    return _state(lock=None).live_generation


def start_rebuild() -> int:
    """Claim the next generation for a rebuild (abandoning any unfinished one) and return it.

    What dead rebuilds left is purged first: once claimed, the lease runs, and a long purge
    would use it up before the rebuild read anything.
    """
    purge_stale_generations()
    with transaction.atomic(using=PROJECTIONS):
        state = _state(lock="FOR UPDATE")
        generation = max(state.live_generation, state.building_generation or 0) + 1
        ProjectionState.objects.using(PROJECTIONS).filter(name=STATE).update(
            building_generation=generation, rebuild_lease_expires_at=_lease_end()
        )
    purge_stale_generations()  # a rebuild still running until the claim (now superseded)
    return generation


def renew_rebuild(generation: int) -> bool:
    """Extend the lease of the rebuild of ``generation``; False once it expired (or another
    rebuild took over): an expired lease is never renewed."""
    with transaction.atomic(using=PROJECTIONS):
        # The row every live batch reads is locked here: a rebuild paused inside this
        # transaction (stopped, frozen, cut off) must not hold it for longer than a moment.
        end_idle_transactions_after(IDLE_TRANSACTION_SECONDS)
        # Locked first, then checked by a statement of its own: a statement's clock is read
        # when it starts, so one that waited for a batch's share lock would judge the lease
        # by a time before that batch found it expired.
        _lock_state()
        renewed = (
            ProjectionState.objects.using(PROJECTIONS)
            .filter(name=STATE, building_generation=generation, rebuild_lease_expires_at__gt=Now())
            .update(rebuild_lease_expires_at=_lease_end())
        )
    return renewed == 1


def purge_lapsed_rebuild(*, max_chunks: int) -> int | None:
    """Purge up to ``max_chunks`` chunks of what a rebuild whose lease expired wrote (it was
    killed, say); return its generation, or None if there is none. The rest is left for
    later calls, as are rows its stalled process still holds locked."""
    state = _state(lock=None)
    if state.building_generation is None or _running_rebuild(state) is not None:
        return None
    try:
        purged = purge_generation(
            state.building_generation,
            lock_timeout_ms=LAPSED_PURGE_LOCK_TIMEOUT_MS,
            max_chunks=max_chunks,
        )
    except OperationalError as error:  # a lock timeout: its process is stalled mid-batch
        logger.info("dead rebuild not purged yet", extra={"error": str(error)[:300]})
        return state.building_generation
    if purged:
        logger.warning(
            "rebuild abandoned: its lease expired",
            extra={"generation": state.building_generation, "purged_rows": purged},
        )
    return state.building_generation


def abandon_rebuild(generation: int) -> None:
    """Stop building ``generation`` (if it still is) and purge what it wrote: until then the
    live projector would write every batch into it too, for nothing. Its lease ends; its
    number stays taken, so the next rebuild's consumer group is a new one."""
    with transaction.atomic(using=PROJECTIONS):
        _lock_state()
        ProjectionState.objects.using(PROJECTIONS).filter(
            name=STATE, building_generation=generation
        ).update(rebuild_lease_expires_at=None)
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
        if _lease_expired(state):
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
    """Delete the rows of generations that are neither live nor being built by a rebuild
    whose lease runs."""
    state = _state(lock=None)
    keep = {state.live_generation, _running_rebuild(state)} - {None}
    # Numbers only go up: one above these was claimed after this read, by a rebuild
    # started while this purge runs, and is not this purge's to delete.
    newest = max(state.live_generation, state.building_generation or 0)
    stale: set[int] = set()
    for model in (InstalledApp, ProjectedSite):
        rows = model.objects.using(PROJECTIONS).filter(generation__lte=newest)
        stale_rows = rows.exclude(generation__in=keep).order_by()
        stale |= set(stale_rows.values_list("generation", flat=True).distinct())
    return sum(purge_generation(generation) for generation in sorted(stale))


def purge_generation(
    generation: int, *, lock_timeout_ms: int | None = None, max_chunks: int | None = None
) -> int:
    """Delete one generation's rows, a chunk per transaction (through the primary key
    index), apps before sites; with ``max_chunks``, that many chunks at most. With
    ``lock_timeout_ms``, raises ``OperationalError`` if a row stays locked longer."""
    purged, chunks = 0, 0
    for model in (InstalledApp, ProjectedSite):
        rows = model.objects.using(PROJECTIONS).filter(generation=generation)
        while max_chunks is None or chunks < max_chunks:
            with transaction.atomic(using=PROJECTIONS):
                if lock_timeout_ms is not None:
                    _set_local("lock_timeout", lock_timeout_ms)
                site_ids = set(rows.values_list("site_id", flat=True)[:PURGE_CHUNK])
                if not site_ids:
                    break
                purged += rows.filter(site_id__in=site_ids).delete()[0]
            chunks += 1
    return purged


def end_idle_transactions_after(seconds: float) -> None:
    """Have PostgreSQL end this transaction's session if it sits idle inside it for longer
    than ``seconds`` (its process stopped mid-transaction): its locks go with it."""
    _set_local("idle_in_transaction_session_timeout", int(seconds * 1000))


def _set_local(setting: str, milliseconds: int) -> None:
    """A PostgreSQL setting for the current transaction only (SQLite has none to set)."""
    if connections[PROJECTIONS].vendor == "postgresql":
        with connections[PROJECTIONS].cursor() as cursor:
            cursor.execute(f"SET LOCAL {setting} = {int(milliseconds)}")


def _lease_end():
    """When a lease taken or renewed now expires, on the database's clock."""
    lease = timedelta(seconds=settings.PROJECTION_REBUILD_LEASE_SECONDS)
    return ExpressionWrapper(Now() + lease, output_field=DateTimeField())


def _lease_expired(state: ProjectionState) -> bool:
    """Whether the rebuild's lease expired, by the database's clock as ``state`` was read."""
    expires = state.rebuild_lease_expires_at
    return expires is None or expires <= state.database_now


def _running_rebuild(state: ProjectionState) -> int | None:
    """The generation being built by a rebuild whose lease runs, if any."""
    if state.building_generation is None or _lease_expired(state):
        return None
    return state.building_generation


def _lock_state() -> None:
    states = ProjectionState.objects.using(PROJECTIONS).select_for_update().filter(name=STATE)
    list(states.values_list("name", flat=True))


def _state(*, lock: str | None) -> ProjectionState:
    """The state row, with ``database_now``: the database's clock as it was read."""
    if lock == "FOR UPDATE":
        # Locked by one statement and read by the next, whose clock starts once the lock
        # is held (see renew_rebuild).
        _lock_state()
    if lock == "FOR SHARE" and connections[PROJECTIONS].vendor == "postgresql":
        # Django has no share lock; SQLite needs none (it runs one writer at a time). A
        # batch's clock is read before it waits, which only makes a lease look younger.
        states = ProjectionState.objects.using(PROJECTIONS).raw(
            f"SELECT *, statement_timestamp() AS database_now "
            f"FROM {ProjectionState._meta.db_table} WHERE name = %s FOR SHARE",
            [STATE],
        )
    else:
        states = (
            ProjectionState.objects.using(PROJECTIONS)
            .filter(name=STATE)
            .annotate(database_now=Now())
        )
    state = next(iter(states), None)
    if state is None:
        ProjectionState.objects.using(PROJECTIONS).get_or_create(name=STATE)
        return _state(lock=lock)
    return state
