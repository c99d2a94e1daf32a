"""Topic registry: each app declares its topics once; ``create_topics`` makes them exist.

Apps declare topics in their ``topics.py`` with :func:`declare`; the registry imports those
modules when asked, so no app needs to know the others.
"""

from dataclasses import dataclass, field
from importlib import import_module

from django.apps import apps
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from .config import client_options, dlq_name, topic_name

_REGISTRY: dict[str, "TopicSpec"] = {}


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its name, partition count, configs, and whether it has a DLQ."""

    name: str
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)
    replication_factor: int = 1
    dead_letter: bool = True

    @property
    def physical_name(self) -> str:
        return topic_name(self.name)


def declare(name: str, **options) -> TopicSpec:
    """Register a topic (idempotent for the same declaration) and return its spec."""
    spec = TopicSpec(name=name, **options)
    existing = _REGISTRY.get(name)
    if existing is not None and existing != spec:
        raise ValueError(f"topic {name!r} declared twice with different settings")
    _REGISTRY[name] = spec
    return spec


def declared_topics() -> list[TopicSpec]:
    """Every declared topic, importing each installed app's ``topics`` module first."""
    for app in apps.get_app_configs():
        try:
            import_module(f"{app.name}.topics")
        except ModuleNotFoundError as error:
            if error.name != f"{app.name}.topics":
                raise
    return sorted(_REGISTRY.values(), key=lambda spec: spec.name)


def _new_topics(specs: list[TopicSpec]) -> list[NewTopic]:
    new = []
    for spec in specs:
        new.append(
            NewTopic(
                name=spec.physical_name,
                num_partitions=spec.partitions,
                replication_factor=spec.replication_factor,
                topic_configs=dict(spec.config),
            )
        )
        if spec.dead_letter:
            # The DLQ keeps the source's partitioning so a poison record keeps its key's order.
            new.append(
                NewTopic(
                    name=dlq_name(spec.physical_name),
                    num_partitions=spec.partitions,
                    replication_factor=spec.replication_factor,
                )
            )
    return new


def ensure_topics(specs: list[TopicSpec] | None = None) -> tuple[list[str], list[str]]:
    """Create the missing topics; return ``(created, already_present)`` physical names."""
    wanted = _new_topics(declared_topics() if specs is None else specs)
    admin = KafkaAdminClient(**client_options(), client_id="eventplatform-admin")
    try:
        existing = set(admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        created = []
        for topic in missing:
            try:
                admin.create_topics([topic])
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
        present = [topic.name for topic in wanted if topic.name not in created]
        return created, present
    finally:
        admin.close()
