"""Per-channel sequence numbers and a short replay history, kept in Redis.

The relay calls :func:`record` for each notification. One Lua script, atomic in Redis,
gives the message the channel's next sequence number, stores it in the channel's history
(a sorted set scored by sequence, trimmed to ``NOTIFICATIONS_HISTORY_LENGTH`` entries) and
remembers its message id, so a record redelivered after a relay crash gets its first number
back instead of a second one. Every key expires ``NOTIFICATIONS_HISTORY_TTL`` seconds after
the channel's last message.
"""

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from django.conf import settings

from .tokens import channel_key

DEFAULT_LENGTH = 1000
DEFAULT_TTL = 3600

# KEYS: sequence counter, history zset, message-id zset.
# ARGV: message id, message JSON, max entries, ttl seconds.
# Returns {seq, 1 if new else 0}.
_RECORD = """
local known = redis.call('ZSCORE', KEYS[3], ARGV[1])
if known then
  return {tonumber(known), 0}
end
local seq = redis.call('INCR', KEYS[1])
local entry = '{"seq":' .. seq .. ',"message":' .. ARGV[2] .. '}'
redis.call('ZADD', KEYS[2], seq, entry)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
local keep = tonumber(ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -keep - 1)
for i = 1, 3 do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4]))
end
return {seq, 1}
"""


@dataclass(frozen=True)
class Entry:
    """A notification as the browser receives it."""

    seq: int
    message: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "message": self.message}


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@cache
def _script():
    return _client().register_script(_RECORD)


def _keys(channel: str) -> list[str]:
    base = f"notifications:{channel_key(channel)}"
    return [f"{base}:seq", f"{base}:history", f"{base}:ids"]


def record(*, channel: str, message_id: str, message: dict[str, Any]) -> tuple[Entry, bool]:
    """Number and store ``message``; return the entry and whether it was new."""
    seq, new = _script()(
        keys=_keys(channel),
        args=[
            message_id,
            json.dumps(message, separators=(",", ":")),
            getattr(settings, "NOTIFICATIONS_HISTORY_LENGTH", DEFAULT_LENGTH),
            getattr(settings, "NOTIFICATIONS_HISTORY_TTL", DEFAULT_TTL),
        ],
    )
    return Entry(seq=int(seq), message=message), bool(new)


def replay(*, channel: str, after: int, until: int | None = None) -> list[Entry]:
    """The stored entries with ``after < seq`` (and ``seq <= until``), in order."""
    upper = "+inf" if until is None else until
    raw = _client().zrangebyscore(_keys(channel)[1], f"({after}", upper)
    entries = []
    for item in raw:
        body = json.loads(item)
        entries.append(Entry(seq=body["seq"], message=body["message"]))
    return entries
