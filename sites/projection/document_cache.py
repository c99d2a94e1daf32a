"""Site documents kept in the web process's memory, dropped when the projector says so.

The read API's hottest request would otherwise cost a round trip to the replica each time.
Each web process keeps up to ``READ_API_DOCUMENT_CACHE_ENTRIES`` documents (least recently
used out first) for at most ``READ_API_DOCUMENT_CACHE_SECONDS`` (0: no cache at all), and
drops a site's copy when the projector announces a new version of it, and every copy when
a rebuild switches the live generation or a reset is announced (:mod:`.announcements`).

It never answers older than the replica would have a moment ago:

- without a working subscription (not yet subscribed, Redis down, announcements unread on
  the socket) nothing is served from or kept in memory, and the copies are dropped;
- after each subscription, nothing is kept until the replica has replayed as far as the
  primary had written when it began: announcements made before then were never heard, so
  until the replica shows what they named, its answers may be older than they said;
- a replica answer older than a version announced in the last ``ANNOUNCED_SECONDS`` (or
  the time limit, if longer: the announcement can arrive before the replica replays the
  change), or from a generation older than the announced live one, is served but not
  kept, and neither is one read while an announcement arrived that could concern it;
- a copy older than the minimum version a client asks for is not used: the replica is
  asked, and answers as it would have;
- sites the replica does not know are not kept, so ids never projected cannot fill memory.

A kept document is served even while the replica is unreachable: its copy was current when
the projector last spoke, and the time limit still holds.
"""

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict

from django.conf import settings
from django.db import DatabaseError, connections

from eventplatform import replica
from eventplatform.routers import PROJECTIONS, PROJECTIONS_REPLICA

from . import announcements, selectors
from .announcement_listener import AnnouncementListener
from .announcements import Announcement
from .selectors import SiteDocument

logger = logging.getLogger(__name__)

#: How long an announced version keeps a replica's older answer out of memory: far beyond
#: a healthy replica's lag (milliseconds), and beyond the lag at which /readyz already
#: reports the replica degraded (PROJECTIONS_REPLICA_MAX_LAG_SECONDS, 30 s by default).
ANNOUNCED_SECONDS = 120.0
#: Announced versions remembered at most, oldest forgotten first: some hundred bytes each.
ANNOUNCED_ENTRIES = 100_000


class DocumentCache:
    """One process's copies of site documents, fresh by announcements on ``channel``."""

    def __init__(self, *, url: str, channel: str, seconds: float, entries: int):
        self.seconds = seconds
        self.entries = entries
        # Announced versions are remembered at least as long as a copy may be kept.
        self._announced_seconds = max(ANNOUNCED_SECONDS, seconds)
        self._lock = threading.Lock()
        #: site id -> (expires at, document), least recently used first.
        self._kept: OrderedDict[uuid.UUID, tuple[float, SiteDocument]] = OrderedDict()
        #: site id -> (forgotten at, highest version announced), oldest announcement first.
        self._announced: OrderedDict[uuid.UUID, tuple[float, int]] = OrderedDict()
        self._live_generation = 0
        #: Changes whenever copies may have gone stale wholesale (a switch, a lost
        #: subscription): a replica answer read across such a change is not kept.
        self._epoch = 0
        #: Where the replica must have replayed to before its answers are kept, taken once
        #: per subscription (``None`` until then), and whether it got there.
        self._replay_target: str | None = None
        self._replica_caught_up = False
        self._listener = AnnouncementListener(
            url=url,
            channel=channel,
            lock=self._lock,
            on_announcement=self._announced_now,
            on_lost=self._subscription_lost,
            on_subscribed=self._take_replay_target,
        )
        self._listener.start()

    def close(self) -> None:
        self._listener.stop()

    def site_document(self, *, site_id: uuid.UUID, min_version: int) -> SiteDocument | None:
        """:func:`.selectors.site_document`, from memory when a copy is known current."""
        with self._lock:
            listening = self._listener.up_to_date()
            kept = self._kept.get(site_id) if listening else None
            if kept and kept[0] > time.monotonic() and kept[1].version >= min_version:
                self._kept.move_to_end(site_id)
                return kept[1]
            epoch, caught_up = self._epoch, self._replica_caught_up
        # Asked before the read: an answer read before the replica got there may be older.
        keepable = listening and (caught_up or self._replica_has_caught_up(epoch))
        found = selectors.site_document(site_id=site_id)
        if keepable and found is not None:
            self._keep(site_id, found, epoch)
        return found

    def _take_replay_target(self) -> bool:
        """On the listener's thread, once subscribed: note where the primary's log ends.
        False (tried again later) while the databases cannot say."""
        with self._lock:
            epoch = self._epoch
        try:
            target = replica.primary_position()
        except DatabaseError as error:
            logger.warning(
                "read API keeps no documents until the projections primary answers (%s)", error
            )
            return False
        finally:
            # This thread's own connections: nothing else would ever close them.
            connections[PROJECTIONS].close()
            connections[PROJECTIONS_REPLICA].close()
        with self._lock:
            if epoch == self._epoch:
                self._replay_target = target
                self._replica_caught_up = target is None
        return True

    def _replica_has_caught_up(self, epoch: int) -> bool:
        target = self._replay_target
        if target is None:
            return False  # not subscribed yet, or the primary's position is not known
        try:
            reached = replica.has_replayed(target)
        except DatabaseError:
            replica.reset_after_failure()
            return False  # the read that follows meets the same failure and says so
        if reached:
            with self._lock:
                if epoch == self._epoch:
                    self._replica_caught_up = True
        return reached

    def _keep(self, site_id: uuid.UUID, found: SiteDocument, epoch: int) -> None:
        now = time.monotonic()
        with self._lock:
            if epoch != self._epoch or found.generation < self._live_generation:
                return
            announced = self._announced.get(site_id)
            if announced is not None and announced[0] > now and announced[1] > found.version:
                return
            kept = self._kept.get(site_id)
            if kept is not None and _position(kept[1]) > _position(found):
                return  # a replica answering older than before (another standby)
            self._kept[site_id] = (now + self.seconds, found)
            self._kept.move_to_end(site_id)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)

    def _announced_now(self, announcement: Announcement) -> None:
        if announcement.reset:
            self._forget_all()
            return
        if announcement.generation is not None:
            self._live_generation = max(self._live_generation, announcement.generation)
            self._forget_all()
            return
        now = time.monotonic()
        for site_id, version in announcement.versions:
            self._kept.pop(site_id, None)
            earlier = self._announced.pop(site_id, None)
            if earlier is not None and earlier[0] > now:
                version = max(version, earlier[1])
            self._announced[site_id] = (now + self._announced_seconds, version)
        # Oldest first is also soonest forgotten: each announcement goes in at the end.
        while self._announced:
            forgotten_at, _ = next(iter(self._announced.values()))
            if forgotten_at >= now and len(self._announced) <= ANNOUNCED_ENTRIES:
                break
            self._announced.popitem(last=False)

    def _subscription_lost(self) -> None:
        self._replay_target, self._replica_caught_up = None, False
        self._forget_all()

    def _forget_all(self) -> None:
        self._kept.clear()
        self._epoch += 1


def _position(document: SiteDocument) -> tuple[int, int]:
    return document.generation, document.version


def site_document(*, site_id: uuid.UUID, min_version: int = 0) -> SiteDocument | None:
    """The site's document as :func:`.selectors.site_document` reads it, from this process's
    memory when it holds a current copy at least ``min_version``."""
    cache = _cache()
    if cache is None:
        return selectors.site_document(site_id=site_id)
    return cache.site_document(site_id=site_id, min_version=min_version)


_current: tuple[tuple, DocumentCache | None] | None = None
_switching = threading.Lock()


def _cache() -> DocumentCache | None:
    """This process's cache, made on first use (so after a server forked its workers) and
    made anew when its settings change (tests change the topic prefix, and so the channel)."""
    global _current
    key = (
        settings.READ_API_DOCUMENT_CACHE_SECONDS,
        settings.READ_API_DOCUMENT_CACHE_ENTRIES,
        settings.REDIS_URL,
        settings.KAFKA_TOPIC_PREFIX,
    )
    current = _current
    if current is not None and current[0] == key:
        return current[1]
    with _switching:
        if _current is not None and _current[0] == key:
            return _current[1]
        if _current is not None and _current[1] is not None:
            _current[1].close()
        seconds, entries, url, _ = key
        cache = None
        if seconds > 0:
            cache = DocumentCache(
                url=url, channel=announcements.channel(), seconds=seconds, entries=entries
            )
        _current = (key, cache)
        return cache


def _forget_in_child() -> None:
    # A forked child has none of its parent's threads, and may have copied a held lock.
    global _current, _switching
    _current, _switching = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)
