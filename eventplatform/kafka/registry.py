"""The consumers this platform can run, by name: ``manage.py consume NAME`` reads it.

Each app declares its long-running consumers in one module, ``<app>/consumers.py``, by
calling :func:`register` on their :class:`~.consumer.BatchConsumer` classes; the modules
are imported on first use of the registry, the way Django's admin finds ``admin.py``.
"""

from dataclasses import dataclass
from typing import TypeVar

from django.utils.module_loading import autodiscover_modules

from .config import topic_name
from .consumer import BatchConsumer


class UnknownConsumer(LookupError):
    """No consumer of that name is registered."""


@dataclass(frozen=True)
class Declaration:
    """One registered consumer: what it is called, reads, and is for."""

    consumer_class: type[BatchConsumer]
    description: str

    @property
    def name(self) -> str:
        return self.consumer_class.name

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics it reads, as named on the broker (``KAFKA_TOPIC_PREFIX`` applied)."""
        return tuple(topic_name(topic) for topic in self.consumer_class.topics)

    @property
    def group(self) -> str:
        return self.build().group_id

    def build(self) -> BatchConsumer:
        """A consumer with its default options, ready for the runtime."""
        return self.consumer_class()


C = TypeVar("C", bound=type[BatchConsumer])

_REGISTRY: dict[str, Declaration] = {}
_discovered = False


def register(consumer_class: C, *, description: str = "") -> C:
    """Declare ``consumer_class`` runnable by name; usable as a class decorator.

    ``description`` (one line) defaults to the first line of the class's docstring.
    Registering the same class again does nothing; another class under a taken name is an
    error.
    """
    name = consumer_class.name
    if not name:
        raise ValueError(f"{consumer_class.__qualname__} has no name to be registered under")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.consumer_class is not consumer_class:
        raise ValueError(
            f"consumer name {name!r} is taken by {existing.consumer_class.__qualname__}"
        )
    if not description:
        doc = (consumer_class.__doc__ or "").strip()
        description = doc.splitlines()[0] if doc else ""
    _REGISTRY[name] = Declaration(consumer_class, description)
    return consumer_class


def _discover() -> None:
    global _discovered
    if not _discovered:
        autodiscover_modules("consumers")
        _discovered = True


def registered() -> list[Declaration]:
    """Every registered consumer, by name."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda declaration: declaration.name)


def get_declaration(name: str) -> Declaration:
    """The consumer registered as ``name``, or :class:`UnknownConsumer` naming the known."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise UnknownConsumer(f"no consumer named {name!r} (known: {known})") from None
