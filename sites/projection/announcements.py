"""What the projector tells web processes, on Redis pub/sub, after its changes committed.

Three kinds of announcement, one message each: the sites a batch changed, with the highest
version it wrote for each (16 bytes of site id and 8 of version a site, so a 2,000-record
batch is one message of under 50 KB); a rebuild's switch of the live generation; and a
reset, which names everything. Web processes drop their copies of what an announcement
names (:mod:`.document_cache`).

An announcement is never a condition of progress: when Redis cannot take it the projector
logs a warning, carries on, and sends it again (with any later ones, in order) before its
next announcement or when :func:`send_unsent` is called. Past ``UNSENT_LIMIT`` waiting,
they give way to one reset. A projector that is given partitions announces a reset, since
their last owner may have died between committing a batch and announcing it. The caches'
time limit bounds what is still lost (a projector cut off from Redis while web processes
are not).
"""

import itertools
import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry

from eventplatform.kafka.config import topic_name

from ..events import SiteChange

logger = logging.getLogger(__name__)

#: Named like a topic and prefixed like one: Redis pub/sub channels are shared by every
#: database of a server, so deployments (and concurrent tests) sharing one stay apart.
CHANNEL = "installed_apps.documents"

_VERSIONS = b"v"
_SWITCH = b"g"
_RESET = b"r"
_SITE = 16 + 8  # site id, version

#: Announcements waiting to be sent again at most, per Redis server and channel.
UNSENT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Announcement:
    """A decoded message: changed sites with their versions, a switch to ``generation``,
    or a reset (every copy may be stale)."""

    versions: tuple[tuple[uuid.UUID, int], ...] = ()
    generation: int | None = None
    reset: bool = False


def channel() -> str:
    """This deployment's channel."""
    return topic_name(CHANNEL)


def announce_versions(changes: Iterable[SiteChange]) -> None:
    """Announce the highest version of each site among ``changes`` (call once committed)."""
    latest: dict[uuid.UUID, int] = {}
    for change in changes:
        if change.version > latest.get(change.site_id, 0):
            latest[change.site_id] = change.version
    if latest:
        _publish(
            _VERSIONS
            + b"".join(site.bytes + version.to_bytes(8) for site, version in latest.items())
        )


def announce_switch(generation: int) -> None:
    """Announce that ``generation`` is now live (call once the switch committed)."""
    _publish(_SWITCH + generation.to_bytes(8))


def queue_reset() -> None:
    """Have every copy dropped, with the next announcement or :func:`send_unsent`. Does no
    I/O, so a consumer's rebalance callback may call it."""
    _queue(_RESET)


def send_unsent() -> None:
    """Send what waits, oldest first; what Redis does not take waits for the next try (the
    projector calls this between batches)."""
    url, name = settings.REDIS_URL, channel()
    waiting = _waiting(url, name)
    if not waiting:
        return
    try:
        client = _client(url)
        while waiting:
            number, message = waiting[0]
            client.publish(name, message)
            with _unsent_lock:
                if waiting and waiting[0][0] == number:  # not given way to a reset meanwhile
                    waiting.popleft()
    except redis.RedisError as error:
        logger.warning(
            "could not announce a projection change to the read API (%d waiting, sent again "
            "later): %s",
            len(waiting),
            error,
        )


def decode(message: bytes) -> Announcement:
    """The announcement in ``message``; ``ValueError`` if it is not one."""
    kind, body = message[:1], message[1:]
    if kind == _RESET and not body:
        return Announcement(reset=True)
    if kind == _SWITCH and len(body) == 8:
        return Announcement(generation=int.from_bytes(body))
    if kind == _VERSIONS and len(body) % _SITE == 0:
        return Announcement(
            versions=tuple(
                (uuid.UUID(bytes=body[at : at + 16]), int.from_bytes(body[at + 16 : at + _SITE]))
                for at in range(0, len(body), _SITE)
            )
        )
    raise ValueError(f"not an announcement: {message[:40]!r}")


#: (Redis URL, channel) -> announcements not yet taken by Redis, oldest first, each with
#: a number of its own: the sender removes what it sent by number, since a reset queued
#: meanwhile is equal to (and, as a bytes constant, the same object as) one sent before.
#: Only the current server and channel are sent to: tests (and a changed setting) move both.
_unsent: dict[tuple[str, str], deque[tuple[int, bytes]]] = {}
#: Guards the queues and the numbering, not the sending: a rebalance callback queues from
#: another thread.
_unsent_lock = threading.Lock()
_numbers = itertools.count()


def _waiting(url: str, name: str) -> deque[tuple[int, bytes]]:
    with _unsent_lock:
        return _unsent.setdefault((url, name), deque())


def _queue(message: bytes) -> None:
    waiting = _waiting(settings.REDIS_URL, channel())
    with _unsent_lock:
        waiting.append((next(_numbers), message))
        if len(waiting) > UNSENT_LIMIT:
            # A reset names every site; the newest switch still tells the live generation.
            switches = [m for _, m in waiting if m[:1] == _SWITCH]
            waiting.clear()
            waiting.extend((next(_numbers), m) for m in [_RESET, *switches[-1:]])


def _publish(message: bytes) -> None:
    _queue(message)
    send_unsent()


@cache
def _client(url: str) -> redis.Redis:
    # Short timeouts and one retry (for a pooled connection Redis dropped): the projector's
    # batch waits for this, and the announcement is worth less than the batch's time.
    return redis.Redis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
