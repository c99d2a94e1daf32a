"""The event envelope: ``id``, ``type``, ``version``, ``occurred_at``, ``data`` (+ ``major``).

Decoding is strict about the envelope: anything that is not one raises
:class:`PoisonRecord`, which the consumer runtime sends to the DLQ instead of crashing or
retrying. It is lenient about what it does not know: unknown fields are ignored.

Versions: ``version`` numbers the schema of an event type (one JSON Schema file each);
``major`` (absent = 1) changes only when a new version breaks readers of the old one.
Adding a field is a new ``version`` of the same major, which older consumers apply as they
are. An event of a newer major raises :class:`NewerMajorVersion`: the runtime pauses its
partition until a consumer that knows it takes over.

Values are parsed by orjson, several times faster than the standard library and strict
where the standard library is lenient: ``NaN``/``Infinity`` and lone surrogates (which no
database column or other JSON reader accepts) make a record poison. Integers beyond 64
bits arrive as floats, so an integer field holding one is refused by its type check.
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

#: The fields every envelope carries.
_REQUIRED = frozenset({"id", "type", "version", "occurred_at", "data"})


class PoisonRecord(Exception):
    """A record that can never be processed: retrying will not help, send it to the DLQ."""


class NewerMajorVersion(Exception):
    """An event of a major version the consumer does not know yet: wait for an upgrade."""


@dataclass(frozen=True)
class Event:
    """An event as it travels on an event topic."""

    type: str
    data: dict[str, Any]
    version: int = 1
    major: int = 1
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def encode(self) -> bytes:
        body = {
            "id": str(self.id),
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "data": self.data,
        }
        if self.major != 1:
            body["major"] = self.major
        return json.dumps(
            body,
            separators=(",", ":"),
            default=str,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> "Event":
        """Parse an envelope or raise :class:`PoisonRecord` saying precisely what is wrong."""
        if raw is None:
            raise PoisonRecord("record has no value (tombstone on an event topic)")
        body = _loads(raw)
        if type(body) is not dict:
            raise PoisonRecord("envelope must be a JSON object")
        if not body.keys() >= _REQUIRED:
            missing = _REQUIRED - body.keys()
            raise PoisonRecord(f"envelope misses {', '.join(sorted(missing))}")
        try:
            event_id = uuid.UUID(str(body["id"]))
            occurred_at = datetime.fromisoformat(body["occurred_at"])
        except (ValueError, TypeError) as error:
            raise PoisonRecord(f"envelope has a malformed id or occurred_at: {error}") from None
        # orjson builds exact built-in types, so ``type() is`` also tells a bool from an int.
        type_, version, data = body["type"], body["version"], body["data"]
        if type(type_) is not str or not type_:
            raise PoisonRecord("envelope type must be a non-empty string")
        if type(version) is not int:
            raise PoisonRecord("envelope version must be an integer")
        if type(data) is not dict:
            raise PoisonRecord("envelope data must be a JSON object")
        if occurred_at.tzinfo is None:
            raise PoisonRecord("envelope occurred_at must carry a time zone")
        major = body.get("major", 1)
        if type(major) is not int or major < 1:
            raise PoisonRecord("envelope major must be a positive integer")
        return cls(
            id=event_id,
            type=type_,
            version=version,
            major=major,
            occurred_at=occurred_at,
            data=data,
        )

    def require_major(self, known: int) -> "Event":
        """Raise :class:`NewerMajorVersion` if this event is of a major above ``known``."""
        if self.major > known:
            raise NewerMajorVersion(
                f"{self.type} major version {self.major} (version {self.version}); "
                f"this consumer knows major {known}"
            )
        return self


def _loads(raw: bytes) -> Any:
    """The JSON value of ``raw``, or :class:`PoisonRecord` with the reason it is not JSON.

    What both parsers refuse is reported in the standard library's words, as it always
    was; what only orjson refuses (``NaN``, lone surrogates) in orjson's.
    """
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as strict:
        try:
            json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PoisonRecord(f"value is not JSON: {error}") from None
        raise PoisonRecord(f"value is not JSON: {strict}") from None
