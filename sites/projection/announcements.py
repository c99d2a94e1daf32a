"""What the projector tells web processes, on Redis pub/sub, after its changes committed.

Two kinds of announcement, one message each: the sites a batch changed, with the highest
version it wrote for each (16 bytes of site id and 8 of version a site, so a 2,000-record
batch is one message of under 50 KB), and a rebuild's switch of the live generation. Web
processes drop their copies of what an announcement names (:mod:`.document_cache`).

An announcement is a hint, never a condition of progress: when Redis cannot take it the
projector logs a warning and carries on, and the caches' time limit bounds how long a
document stays stale.
"""

import logging
import uuid
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
_SITE = 16 + 8  # site id, version


@dataclass(frozen=True, slots=True)
class Announcement:
    """A decoded message: changed sites with their versions, or a switch to ``generation``."""

    versions: tuple[tuple[uuid.UUID, int], ...] = ()
    generation: int | None = None


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


def decode(message: bytes) -> Announcement:
    """The announcement in ``message``; ``ValueError`` if it is not one."""
    kind, body = message[:1], message[1:]
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


def _publish(message: bytes) -> None:
    try:
        _client(settings.REDIS_URL).publish(channel(), message)
    except redis.RedisError as error:
        logger.warning("could not announce a projection change to the read API: %s", error)


@cache
def _client(url: str) -> redis.Redis:
    # Short timeouts and one retry (for a pooled connection Redis dropped): the projector's
    # batch waits for this, and the announcement is worth less than the batch's time.
    return redis.Redis.from_url(
        url, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
    )
