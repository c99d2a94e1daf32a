"""The projector: ``sites.metadata`` → installed-apps read model, under the consumer runtime.

Offsets are stored in ``projections`` in the same transaction as the rows, so a batch's
effects and its position commit together: exactly-once in effect, whatever kills the
process. It reads nothing but events and its own database.
"""

import time
from collections.abc import Callable
from functools import partial

from django.conf import settings
from django.db import transaction

from eventplatform.kafka.consumer import BatchConsumer, ConsumerRuntime, Message, group_id_of
from eventplatform.kafka.offsets import reset_offsets
from eventplatform.routers import PROJECTIONS

from ..events import SiteChange, parse_site_change
from ..topics import SITES_METADATA
from .announcements import announce_versions, queue_reset, send_unsent
from .generations import (
    IDLE_TRANSACTION_SECONDS,
    RebuildLeaseLapsed,
    abandon_rebuild,
    end_idle_transactions_after,
    purge_lapsed_rebuild,
    renew_rebuild,
    start_rebuild,
    switch_to,
    target_generations,
)
from .writer import project


class InstalledAppsProjector(BatchConsumer):
    """Projects every site change into the live generation (and one being rebuilt)."""

    name = "project_installed_apps"
    topics = (SITES_METADATA,)
    database = PROJECTIONS
    store_offsets_in_database = True
    # Large batches: the writer's cost is per statement far more than per row.
    max_batch_size = 2000
    # How soon an announcement Redis could not take is sent again.
    periodic_seconds = 1.0

    def decode(self, record) -> SiteChange:
        return parse_site_change(record.value)

    def handle_batch(self, messages: list[Message]) -> None:
        changes = [m.value for m in messages]
        project(changes=changes, generations=target_generations())
        # Web processes drop their copies of these sites once the rows are committed.
        # Robust: a failed announcement must not fail (and so retry) a committed batch.
        transaction.on_commit(partial(announce_versions, changes), using=PROJECTIONS, robust=True)

    def on_assigned(self, partitions) -> None:
        # Their last owner may have died between committing a batch and announcing it.
        if partitions:
            queue_reset()

    #: How often the projector purges a chunk of a dead rebuild's rows.
    lapsed_rebuild_check_seconds = 5.0
    _next_lapsed_rebuild_check = 0.0

    def periodic(self) -> None:
        send_unsent()
        # Batches stop writing into a dead rebuild's generation as soon as its lease
        # expires; what it wrote goes too, a chunk at a time between batches (a stalled
        # rebuild may still hold rows locked, which each attempt waits for only briefly).
        if time.monotonic() >= self._next_lapsed_rebuild_check:
            self._next_lapsed_rebuild_check = time.monotonic() + self.lapsed_rebuild_check_seconds
            dead = purge_lapsed_rebuild(max_chunks=1)
            if dead is not None:
                # Its stored positions too, or it would show as a consumer falling behind.
                reset_offsets(database=PROJECTIONS, group=group_id_of(rebuild_name(dead)))


def rebuild_name(generation: int) -> str:
    """The consumer name (and so the group) of the rebuild of ``generation``."""
    return f"project_installed_apps.rebuild.{generation}"


class RebuildProjector(InstalledAppsProjector):
    """Replays the topic from the start into one new generation, under its own group.

    ``on_replayed`` (if given) is told how many records each applied batch held.
    """

    def __init__(self, generation: int, on_replayed: Callable[[int], None] | None = None):
        self.generation = generation
        self.name = rebuild_name(generation)
        self.on_replayed = on_replayed
        self.lease_lapsed = False

    def on_assigned(self, partitions) -> None:
        """Nothing to announce: no one reads a generation being built."""

    def periodic(self) -> None:
        """Renew the rebuild's lease. The runtime calls this every second while it polls,
        not while it waits out an outage: a rebuild held up for longer than the lease is
        given up (it says so, and can be run again)."""
        self.lease_lapsed = self.lease_lapsed or not renew_rebuild(self.generation)

    def handle_batch(self, messages: list[Message]) -> None:
        # A rebuild paused inside its batch must not keep rows locked that the live
        # projector's purge (or its own next attempt) needs.
        end_idle_transactions_after(IDLE_TRANSACTION_SECONDS)
        project(changes=[m.value for m in messages], generations=(self.generation,))
        if self.on_replayed is not None:
            self.on_replayed(len(messages))


class RebuildBlocked(RuntimeError):
    """The topic holds an event this code cannot read, so no rebuild can be complete."""


class CaughtUp:
    """``until`` predicate: true once the runtime has read to the end of its assignment.

    The end is taken once, at the first call after assignment, by the platform's one rule
    (:mod:`eventplatform.kafka.catch_up`), so a steady stream of new events cannot keep a
    rebuild from finishing; whatever arrives later is applied by the live projector. Also
    true, with ``blocked`` set, once a partition stops at an event of a newer major version:
    the end lies beyond it, and waiting would be for ever.
    """

    def __init__(self):
        self._end = None
        self.reached = False
        self.blocked: set = set()

    def __call__(self, runtime: ConsumerRuntime) -> bool:
        self.blocked = runtime.blocked_partitions()
        if self.blocked:
            return True
        # An empty assignment is not "nothing to read": a topic created a moment ago may
        # not be in the client's metadata yet, and the group assigns again once it is.
        if not runtime.assigned.is_set() or not runtime.assignment():
            return False
        if self._end is None:
            self._end = runtime.end_of_log()
            polled_nothing = False
        else:
            polled_nothing = runtime.last_poll_empty
        self.reached = self._end.reached(polled_nothing=polled_nothing)
        return self.reached


def rebuild(
    *,
    max_retries: int = 3,
    install_signal_handlers: bool = False,
    on_replayed: Callable[[int], None] | None = None,
) -> int | None:
    """Build a new generation from the whole topic beside the live one, then switch to it.

    Returns the new live generation, or ``None`` if stopped before it was complete (the
    live generation is then untouched, and what the rebuild wrote is purged). Raises
    :class:`RebuildBlocked` if the topic holds an event of a newer major version than this
    code reads, and :class:`RebuildSuperseded` if another rebuild took over or this one's
    lease lapsed (what it wrote is then purged too). ``on_replayed`` is told the size of
    each batch replayed (a batch retried record by record may be told again).
    """
    generation = start_rebuild()
    consumer = RebuildProjector(generation, on_replayed=on_replayed)
    # From the start of the topic, whatever an earlier rebuild of this number stored.
    reset_offsets(database=PROJECTIONS, group=consumer.group_id)
    runtime = ConsumerRuntime(consumer, max_retries=max_retries)
    if install_signal_handlers:
        runtime.install_signal_handlers()
    caught_up = CaughtUp()
    runtime.run(until=lambda runtime: consumer.lease_lapsed or caught_up(runtime))
    switched = False
    try:
        # Renewed once more before switching: a rebuild stalled after its last renewal
        # must find out here, where it can say so.
        if consumer.lease_lapsed or (caught_up.reached and not renew_rebuild(generation)):
            raise RebuildLeaseLapsed(
                f"the rebuild of generation {generation} lost its lease (it stalled for "
                f"longer than {settings.PROJECTION_REBUILD_LEASE_SECONDS:g} s, or another "
                "rebuild started): readers kept the live projection; rebuild again"
            )
        if caught_up.reached:
            switch_to(generation)
            switched = True
    finally:
        if not switched:
            abandon_rebuild(generation)  # if the generation is still this rebuild's
        reset_offsets(database=PROJECTIONS, group=consumer.group_id)
    if caught_up.blocked:
        where = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in caught_up.blocked))
        raise RebuildBlocked(
            f"{where} holds an event of a newer major version than this code reads: deploy "
            "code that reads it, then rebuild (readers kept the live projection)"
        )
    return generation if switched else None
