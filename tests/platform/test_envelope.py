import json
import uuid
from datetime import UTC, datetime

import pytest

from eventplatform.kafka.envelope import Event, PoisonRecord


def test_round_trip_keeps_every_field():
    event = Event(type="SiteMetadataChanged", version=2, data={"site_id": "s1", "apps": ["a"]})
    decoded = Event.decode(event.encode())
    assert decoded == event


def _valid(**overrides) -> bytes:
    body = {
        "id": str(uuid.uuid4()),
        "type": "T",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {},
    }
    body.update(overrides)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no value"),
        (b"\xff\xfe binary", "not JSON"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"type": "T"}).encode(), "misses data, id, occurred_at, version"),
        (_valid(id="not-a-uuid"), "malformed id"),
        (_valid(occurred_at="yesterday"), "malformed id or occurred_at"),
        (_valid(occurred_at="2026-01-01T00:00:00"), "time zone"),
        (_valid(type=""), "type must be"),
        (_valid(version="1"), "version must be an integer"),
        (_valid(version=True), "version must be an integer"),
        (_valid(data=[1]), "data must be a JSON object"),
    ],
)
def test_a_record_that_is_not_an_envelope_is_poison(raw, reason):
    with pytest.raises(PoisonRecord, match=reason):
        Event.decode(raw)
