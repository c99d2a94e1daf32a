"""Per-channel sequence numbers and a short replay history, kept in Redis.

The relay calls :func:`record` for each notification. One Lua script, atomic in Redis,
gives the message the channel's next sequence number, stores it in the channel's history
(a sorted set scored by sequence, trimmed to ``NOTIFICATIONS_HISTORY_LENGTH`` entries) and
remembers its message id, so a record redelivered after a relay crash gets its first number
back instead of a second one. Every key expires ``NOTIFICATIONS_HISTORY_TTL`` seconds after
the channel's last message.

Sequence numbers belong to an *epoch*: a random name chosen whenever the channel's counter
is (re)created. If Redis loses the history (restarted empty, keys expired), numbering starts
again at 1 in a new epoch, so a socket that remembers ``(epoch, seq)`` can tell "nothing new"
from "everything after my position was lost" instead of dropping the new messages as seen.
"""

import json
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
from django.conf import settings

from .tokens import channel_key

DEFAULT_LENGTH = 1000
DEFAULT_TTL = 3600

# KEYS: sequence counter, history zset, message-id zset, epoch.
# ARGV: message id, message JSON, max entries, ttl seconds, a fresh epoch name.
# Returns {seq, 1 if new else 0, epoch}.
_RECORD = """
local epoch = redis.call('GET', KEYS[4])
if redis.call('EXISTS', KEYS[1]) == 0 or not epoch then
  -- The counter starts again at 1: a new epoch, so nobody takes 1 for an old number.
  epoch = ARGV[5]
  redis.call('SET', KEYS[4], epoch)
end
local known = redis.call('ZSCORE', KEYS[3], ARGV[1])
if known then
  return {tonumber(known), 0, epoch}
end
local seq = redis.call('INCR', KEYS[1])
-- The epoch is hex (secrets.token_hex), so it needs no JSON escaping.
local entry = '{"seq":' .. seq .. ',"epoch":"' .. epoch .. '","message":' .. ARGV[2] .. '}'
redis.call('ZADD', KEYS[2], seq, entry)
redis.call('ZADD', KEYS[3], seq, ARGV[1])
local keep = tonumber(ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -keep - 1)
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -keep - 1)
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4]))
end
return {seq, 1, epoch}
"""


@dataclass(frozen=True)
class Entry:
    """A notification as the browser receives it."""

    seq: int
    epoch: str
    message: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "epoch": self.epoch, "message": self.message}


@cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@cache
def _script():
    return _client().register_script(_RECORD)


def _keys(channel: str) -> list[str]:
    base = f"notifications:{channel_key(channel)}"
    return [f"{base}:seq", f"{base}:history", f"{base}:ids", f"{base}:epoch"]


def record(*, channel: str, message_id: str, message: dict[str, Any]) -> tuple[Entry, bool]:
    """Number and store ``message``; return the entry and whether it was new."""
    seq, new, epoch = _script()(
        keys=_keys(channel),
        args=[
            message_id,
            json.dumps(message, separators=(",", ":")),
            getattr(settings, "NOTIFICATIONS_HISTORY_LENGTH", DEFAULT_LENGTH),
            getattr(settings, "NOTIFICATIONS_HISTORY_TTL", DEFAULT_TTL),
            secrets.token_hex(8),
        ],
    )
    return Entry(seq=int(seq), epoch=epoch.decode(), message=message), bool(new)


def read(*, channel: str, after: int, until: int | None = None) -> tuple[str | None, list[Entry]]:
    """The channel's current epoch (None: no history) and its entries with ``after < seq``
    (and ``seq <= until``), in order, read together."""
    keys = _keys(channel)
    upper = "+inf" if until is None else until
    with _client().pipeline(transaction=True) as pipe:
        pipe.get(keys[3])
        pipe.zrangebyscore(keys[1], f"({after}", upper)
        epoch, raw = pipe.execute()
    entries = []
    for item in raw:
        body = json.loads(item)
        entries.append(Entry(seq=body["seq"], epoch=body["epoch"], message=body["message"]))
    return (epoch.decode() if epoch is not None else None), entries


def replay(*, channel: str, after: int, until: int | None = None) -> list[Entry]:
    """The stored entries with ``after < seq`` (and ``seq <= until``), in order."""
    return read(channel=channel, after=after, until=until)[1]
