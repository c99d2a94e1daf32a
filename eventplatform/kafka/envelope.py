"""The event envelope: ``id``, ``type``, ``version``, ``occurred_at``, ``data``.

Decoding is strict: anything that is not exactly an envelope raises :class:`PoisonRecord`,
which the consumer runtime sends to the DLQ instead of crashing or retrying.
"""

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class PoisonRecord(Exception):
    """A record that can never be processed: retrying will not help, send it to the DLQ."""


@dataclass(frozen=True)
class Event:
    """An event as it travels on an event topic."""

    type: str
    data: dict[str, Any]
    version: int = 1
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def encode(self) -> bytes:
        return json.dumps(
            {
                "id": str(self.id),
                "type": self.type,
                "version": self.version,
                "occurred_at": self.occurred_at.isoformat(),
                "data": self.data,
            },
            separators=(",", ":"),
            default=str,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> "Event":
        """Parse an envelope or raise :class:`PoisonRecord` saying precisely what is wrong."""
        if raw is None:
            raise PoisonRecord("record has no value (tombstone on an event topic)")
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PoisonRecord(f"value is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise PoisonRecord("envelope must be a JSON object")
        missing = {"id", "type", "version", "occurred_at", "data"} - body.keys()
        if missing:
            raise PoisonRecord(f"envelope misses {', '.join(sorted(missing))}")
        try:
            event_id = uuid.UUID(str(body["id"]))
            occurred_at = datetime.fromisoformat(body["occurred_at"])
        except (ValueError, TypeError) as error:
            raise PoisonRecord(f"envelope has a malformed id or occurred_at: {error}") from None
        if not isinstance(body["type"], str) or not body["type"]:
            raise PoisonRecord("envelope type must be a non-empty string")
        if not isinstance(body["version"], int) or isinstance(body["version"], bool):
            raise PoisonRecord("envelope version must be an integer")
        if not isinstance(body["data"], dict):
            raise PoisonRecord("envelope data must be a JSON object")
        if occurred_at.tzinfo is None:
            raise PoisonRecord("envelope occurred_at must carry a time zone")
        return cls(
            id=event_id,
            type=body["type"],
            version=body["version"],
            occurred_at=occurred_at,
            data=body["data"],
        )
