"""The KV namespaces this platform declares, and looking one up by name.

Declaring a namespace (:func:`register`) also declares its compacted topic, so importing
this module is what makes ``create_topics`` create them.
"""

from collections.abc import Iterable

from eventplatform.kafka.topics import COMPACT, declare

from .schema import CountryCode, KVValidationError, Namespace, Text, TimeZone, TimeZoneList


class UnknownNamespace(LookupError):
    """No namespace of that name is declared."""


_NAMESPACES: dict[str, Namespace] = {}


def register(namespace: Namespace) -> Namespace:
    """Declare a namespace and its compacted topic (idempotent for the same declaration)."""
    existing = _NAMESPACES.get(namespace.name)
    if existing is not None and existing != namespace:
        raise ValueError(f"namespace {namespace.name!r} declared twice differently")
    declare(
        namespace.topic,
        partitions=namespace.partitions,
        config={**dict(namespace.topic_config), **COMPACT},
        # A bad record is skipped by the store, never retried, so there is nothing to park.
        dead_letter=False,
    )
    _NAMESPACES[namespace.name] = namespace
    return namespace


def get_namespace(name: str) -> Namespace:
    """The declared namespace, or :class:`UnknownNamespace` naming the known ones."""
    try:
        return _NAMESPACES[name]
    except KeyError:
        known = ", ".join(sorted(_NAMESPACES)) or "none"
        raise UnknownNamespace(f"unknown namespace {name!r} (known: {known})") from None


def all_namespaces() -> Iterable[Namespace]:
    return sorted(_NAMESPACES.values(), key=lambda ns: ns.name)


def _primary_is_listed(value: dict) -> None:
    if value["primary"] not in value["zones"]:
        raise KVValidationError(f"{value['primary']!r} is not one of the zones", field="primary")


SUPPORTED_COUNTRIES = register(
    Namespace(
        name="supported-countries",
        description="Countries the platform serves; each gets its time zones derived.",
        key_rule=CountryCode(with_time_zones=True),
        fields=(Text("name", max_length=100),),
    )
)

TIME_ZONES = register(
    Namespace(
        name="time-zones",
        description="IANA time zones of each supported country, derived by derive_time_zones.",
        key_rule=CountryCode(),
        fields=(TimeZoneList("zones"), TimeZone("primary")),
        checks=(_primary_is_listed,),
        derived_by="derive_time_zones, from supported-countries",
    )
)
