"""Namespace validation: keys, value schemas, sizes (no broker needed)."""

import dataclasses

import pytest

from kvconfig.namespaces import (
    SUPPORTED_COUNTRIES,
    TIME_ZONES,
    UnknownNamespace,
    get_namespace,
)
from kvconfig.schema import KVValidationError


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("usa", "key 'usa' is not an ISO 3166 alpha-2 code"),
        ("U1", "key 'U1' is not an ISO 3166 alpha-2 code"),
        ("", "key is required"),
        ("ss", "key 'ss' must be upper case: 'SS'"),
        ("XX", "key 'XX' is not an assigned ISO 3166 alpha-2 country code"),
    ],
)
def test_bad_keys_are_refused_with_a_precise_message(key, message):
    with pytest.raises(KVValidationError, match=message) as caught:
        SUPPORTED_COUNTRIES.validate_key(key)
    assert caught.value.field == "key"


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("South Sudan", "value", "value must be a JSON object with name"),
        ({}, "name", "this field is required"),
        ({"name": ""}, "name", "must not be empty"),
        ({"name": 7}, "name", "must be a string"),
        ({"name": "x", "capital": "Juba"}, "value", "unknown field 'capital'"),
        ({"name": "x" * 101}, "name", "must be at most 100 characters"),
    ],
)
def test_country_values_follow_the_schema(value, field, message):
    with pytest.raises(KVValidationError, match=message) as caught:
        SUPPORTED_COUNTRIES.validate_value(value)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"zones": ["Mars/Olympus"], "primary": "Mars/Olympus"}, "zones", "unknown IANA time"),
        (
            {"zones": ["Africa/Juba"], "primary": "Europe/Paris"},
            "primary",
            "is not one of the zones",
        ),
        ({"zones": [], "primary": "Africa/Juba"}, "zones", "non-empty list"),
        ({"zones": ["Africa/Juba", "Africa/Juba"], "primary": "Africa/Juba"}, "zones", "twice"),
        ({"zones": ["Africa/Juba"] * 51, "primary": "Africa/Juba"}, "zones", "at most 50"),
    ],
)
def test_time_zone_values_are_checked_against_the_tz_database(value, field, message):
    with pytest.raises(KVValidationError, match=message) as caught:
        TIME_ZONES.validate_value(value)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"name": "\\ud800"}',  # a lone surrogate: no UTF-8 text can carry it on
        b'{"name": "\xff"}',  # not UTF-8
        b"[" * 1500 + b"]" * 1500,  # nested deeper than any value needs
        b'{"name": "South Sudan"',
    ],
)
def test_a_record_value_that_is_not_strict_json_is_refused(raw):
    with pytest.raises(KVValidationError, match="^value is not JSON: ") as caught:
        SUPPORTED_COUNTRIES.decode_value(raw)
    assert caught.value.field == "value"


def test_a_record_value_is_cleaned_as_a_written_one():
    assert SUPPORTED_COUNTRIES.decode_value(b'{"name": " South Sudan "}') == {"name": "South Sudan"}
    with pytest.raises(KVValidationError, match="must be a string"):
        SUPPORTED_COUNTRIES.decode_value(b'{"name": 7}')


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xffSS", "key is not UTF-8"),
        (None, "the record has no key"),
        (b"ss", "key 'ss' must be upper case"),
    ],
)
def test_a_record_key_is_checked_as_a_written_one(raw, message):
    assert SUPPORTED_COUNTRIES.decode_key(b"SS") == "SS"
    with pytest.raises(KVValidationError, match=message) as caught:
        SUPPORTED_COUNTRIES.decode_key(raw)
    assert caught.value.field == "key"


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        # The first field in declared order that is bad or missing is the one reported.
        ({"zones": ["Mars/Olympus"]}, "zones", "unknown IANA time zone"),
        ({"zones": ["Africa/Juba"]}, "primary", "this field is required"),
        ({"primary": "Mars/Olympus"}, "zones", "this field is required"),
        ({"zones": "x", "primary": "y", "extra": 1}, "value", "unknown field 'extra'"),
    ],
)
def test_a_value_with_several_faults_reports_the_first(value, field, message):
    with pytest.raises(KVValidationError, match=message) as caught:
        TIME_ZONES.validate_value(value)
    assert caught.value.field == field


def test_a_value_too_large_is_refused():
    small = dataclasses.replace(TIME_ZONES, max_value_bytes=40)
    zone = "America/Argentina/Buenos_Aires"
    with pytest.raises(KVValidationError, match=r"value is \d+ bytes; the limit is 40"):
        small.validate_value({"zones": [zone], "primary": zone})
    with pytest.raises(KVValidationError, match="value is 41 bytes; the limit is 40"):
        small.decode_value(b" " * 41)


def test_valid_values_come_back_cleaned_and_read_only():
    value = SUPPORTED_COUNTRIES.validate_value({"name": "  South Sudan "})
    assert value == {"name": "South Sudan"}
    with pytest.raises(TypeError, match="read-only"):
        value["name"] = "changed"
    zones = TIME_ZONES.validate_value({"zones": ["Africa/Juba"], "primary": "Africa/Juba"})
    assert zones["zones"] == ("Africa/Juba",)


def test_unknown_namespace_names_the_known_ones():
    with pytest.raises(UnknownNamespace, match="unknown namespace 'nope'.*supported-countries"):
        get_namespace("nope")
