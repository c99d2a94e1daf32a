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
        (_valid(version=2**64), "version must be an integer"),  # parsed as a float
    ],
)
def test_a_record_that_is_not_an_envelope_is_poison(raw, reason):
    with pytest.raises(PoisonRecord, match=reason):
        Event.decode(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"data": {"weight": NaN}}', "value is not JSON: unexpected character"),
        (b'{"data": {"weight": -Infinity}}', "value is not JSON: no digit after sign"),
        (b'{"data": {"name": "\\ud800"}}', "value is not JSON: no low surrogate"),
    ],
)
def test_what_only_a_strict_parser_refuses_is_poison_with_its_reason(raw, reason):
    """NaN, Infinity and lone surrogates, which the standard library would let through."""
    with pytest.raises(PoisonRecord, match=reason):
        Event.decode(raw)


def test_what_both_parsers_refuse_is_reported_in_the_standard_librarys_words():
    with pytest.raises(PoisonRecord) as refused:
        Event.decode(b'{"id": 1,}')
    assert str(refused.value) == (
        "value is not JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 10 (char 9)"
    )
