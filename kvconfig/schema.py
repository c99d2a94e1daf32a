"""The KV schema toolkit: key rules, value fields, and the :class:`Namespace` they make up.

Each namespace is one compacted topic ``kv.<name>`` whose records carry the plain JSON
value (a null value deletes the key). Validation lives here so the admin, the CLI and the
store all apply the same rules; values come back *frozen* (read-only dicts and tuples)
because a store hands the same object to every reader in the process. The namespaces
themselves are declared in :mod:`kvconfig.namespaces`.
"""

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import orjson

from . import tzdb


class KVValidationError(ValueError):
    """Bad key or value; ``field`` names what is wrong (``key``, ``value`` or a value field)."""

    def __init__(self, message: str, *, field: str = "value"):
        # Messages about a value field name the field when shown on their own (CLI, logs).
        super().__init__(message if field in ("key", "value") else f"{field}: {message}")
        self.message = message
        self.field = field


class FrozenDict(dict):
    """A dict that refuses changes, so a shared store value cannot be altered by a reader."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("KV values are read-only; put() a new value instead")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self):
        # copy and pickle rebuild from the items instead of calling the refused __setitem__.
        return (FrozenDict, (dict(self),))


def thaw(value: Any) -> Any:
    """A plain, mutable JSON value (dicts and lists) from a frozen one."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


# --- keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountryCode:
    """Keys are assigned ISO 3166 alpha-2 codes in upper case, e.g. ``SS``; with
    ``with_time_zones``, only those of countries the tz database gives time zones (it has
    none for the uninhabited BV and HM)."""

    with_time_zones: bool = False

    @property
    def description(self) -> str:
        having = ", of a country with time zones" if self.with_time_zones else ""
        return f"ISO 3166 alpha-2 country code in upper case, e.g. SS{having}"

    def validate(self, key: str) -> str:
        if key in self._accepted():
            return key  # every accepted code is two upper-case letters: nothing else to check
        if not key:
            raise KVValidationError("key is required", field="key")
        if re.fullmatch(r"[A-Za-z]{2}", key) and key != key.upper():
            raise KVValidationError(f"key {key!r} must be upper case: {key.upper()!r}", field="key")
        if not re.fullmatch(r"[A-Z]{2}", key):
            raise KVValidationError(
                f"key {key!r} is not an ISO 3166 alpha-2 code (two letters, e.g. 'SS')",
                field="key",
            )
        name = tzdb.country_names().get(key)
        if name is None:
            raise KVValidationError(
                f"key {key!r} is not an assigned ISO 3166 alpha-2 country code", field="key"
            )
        raise KVValidationError(
            f"{key} ({name}) has no time zones in the tz database, so none could be derived",
            field="key",
        )

    def _accepted(self):
        return tzdb.country_zones() if self.with_time_zones else tzdb.country_names()


@dataclass(frozen=True)
class KeyPattern:
    """Keys matching a regular expression (for namespaces beyond countries)."""

    pattern: str
    description: str
    max_length: int = 200

    @functools.cached_property
    def _regex(self) -> re.Pattern:
        return re.compile(self.pattern)

    def validate(self, key: str) -> str:
        if not key:
            raise KVValidationError("key is required", field="key")
        if len(key) > self.max_length or not self._regex.fullmatch(key):
            raise KVValidationError(f"key {key!r} is not {self.description}", field="key")
        return key


# --- value fields -----------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A non-empty string of at most ``max_length`` characters (surrounding blanks removed)."""

    name: str
    max_length: int = 100
    label: str = ""
    kind = "text"

    def clean(self, raw: Any) -> str:
        if not isinstance(raw, str):
            raise KVValidationError("must be a string", field=self.name)
        text = raw.strip()
        if not text:
            raise KVValidationError("must not be empty", field=self.name)
        if len(text) > self.max_length:
            raise KVValidationError(
                f"must be at most {self.max_length} characters (it has {len(text)})",
                field=self.name,
            )
        return text


@dataclass(frozen=True)
class TimeZone:
    """One IANA time zone name, e.g. ``Africa/Juba``."""

    name: str
    label: str = ""
    kind = "zone"

    def clean(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise KVValidationError("must be an IANA time zone name", field=self.name)
        zone = raw.strip()
        if zone not in tzdb.available_zones():
            raise KVValidationError(f"unknown IANA time zone {zone!r}", field=self.name)
        return zone


@dataclass(frozen=True)
class TimeZoneList:
    """A non-empty list of distinct IANA time zone names."""

    name: str
    max_items: int = 50
    label: str = ""
    kind = "zone_list"

    def clean(self, raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, list | tuple) or not raw:
            raise KVValidationError("must be a non-empty list of IANA time zones", field=self.name)
        if len(raw) > self.max_items:
            raise KVValidationError(
                f"must list at most {self.max_items} zones (it has {len(raw)})", field=self.name
            )
        clean_zone = TimeZone(self.name).clean
        zones = tuple(clean_zone(item) for item in raw)
        if len(set(zones)) < len(zones):
            duplicates = sorted({z for z in zones if zones.count(z) > 1})
            raise KVValidationError(f"lists {', '.join(duplicates)} twice", field=self.name)
        return zones


Field = Text | TimeZone | TimeZoneList


# --- namespaces -------------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    """A declared namespace: its topic, key rule, value fields and cross-field checks."""

    name: str
    description: str
    key_rule: CountryCode | KeyPattern
    fields: tuple[Field, ...]
    checks: tuple[Callable[[dict], None], ...] = ()
    max_value_bytes: int = 4096
    partitions: int = 1
    #: Extra topic configs beside compaction, e.g. how soon the log cleaner runs.
    topic_config: tuple[tuple[str, str], ...] = ()
    #: Who writes a derived namespace (e.g. "derive_time_zones, from supported-countries");
    #: set means nobody edits it by hand, since the next derivation would overwrite the edit.
    derived_by: str = ""

    @property
    def topic(self) -> str:
        """The logical topic (``KAFKA_TOPIC_PREFIX`` is applied by the Kafka toolkit)."""
        return f"kv.{self.name}"

    def validate_key(self, key: Any) -> str:
        if not isinstance(key, str):
            raise KVValidationError("key must be a string", field="key")
        return self.key_rule.validate(key)

    def decode_key(self, raw: bytes | None) -> str:
        """A record's key, checked as :meth:`validate_key` does (``KVValidationError`` if not)."""
        if raw is None:
            raise KVValidationError("the record has no key", field="key")
        try:
            key = raw.decode()
        except UnicodeDecodeError as error:
            raise KVValidationError(f"key is not UTF-8: {error}", field="key") from None
        return self.key_rule.validate(key)

    def validate_value(self, value: Any) -> FrozenDict:
        """The value cleaned and frozen, or :class:`KVValidationError` saying what is wrong."""
        cleaned = self._clean(value)
        try:
            size = len(encode_value(cleaned))
        except UnicodeEncodeError:
            # json.loads takes "\ud800"; no UTF-8 text, so no record, can carry it.
            raise KVValidationError(
                "value holds a lone surrogate (\\ud800-\\udfff), which is not text",
                field="value",
            ) from None
        if size > self.max_value_bytes:
            raise KVValidationError(
                f"value is {size} bytes; the limit is {self.max_value_bytes}", field="value"
            )
        return cleaned

    def decode_value(self, raw: bytes) -> FrozenDict:
        """Parse and validate a record's value (``KVValidationError`` when it is not valid)."""
        if len(raw) > self.max_value_bytes:
            raise KVValidationError(
                f"value is {len(raw)} bytes; the limit is {self.max_value_bytes}", field="value"
            )
        try:
            # orjson parses several times faster than json and is stricter: it refuses
            # invalid UTF-8, lone surrogates (no text could carry them on), NaN and
            # Infinity, and nesting deeper than 1,024 levels (where json would raise a
            # RecursionError), all as a JSONDecodeError.
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise KVValidationError(f"value is not JSON: {error}") from None
        return self._clean(value)

    @functools.cached_property
    def _field_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)

    @functools.cached_property
    def _cleaners(self) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
        return tuple((f.name, f.clean) for f in self.fields)

    def _clean(self, value: Any) -> FrozenDict:
        """Check a decoded value; field cleaners return immutable values, so freezing the
        top level is enough. This runs for every record a store bootstraps, so a value
        with exactly the declared fields takes one set comparison and one call per field.
        """
        if not isinstance(value, dict):
            raise KVValidationError(
                f"value must be a JSON object with {self._field_list()}", field="value"
            )
        if value.keys() != self._field_names:
            self._refuse_fields(value)
        cleaned = {}
        for name, clean in self._cleaners:
            cleaned[name] = clean(value[name])
        for check in self.checks:
            check(cleaned)
        return FrozenDict(cleaned)

    def _refuse_fields(self, value: dict) -> NoReturn:
        """Raise what is wrong with a value whose fields are not the declared ones: an
        unknown field, else the first field in declared order that is bad or missing."""
        unknown = sorted(value.keys() - self._field_names)
        if unknown:
            raise KVValidationError(
                f"unknown field {unknown[0]!r} (allowed: {self._field_list()})", field="value"
            )
        missing = next(i for i, spec in enumerate(self.fields) if spec.name not in value)
        for spec in self.fields[:missing]:
            spec.clean(value[spec.name])
        raise KVValidationError("this field is required", field=self.fields[missing].name)

    def _field_list(self) -> str:
        return ", ".join(f.name for f in self.fields)


def encode_value(value: Any) -> bytes:
    """The bytes a value travels as: compact JSON with sorted keys."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
