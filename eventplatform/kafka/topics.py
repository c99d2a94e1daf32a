"""Topic registry: each app declares its topics once; ``create_topics`` makes them exist.

Apps declare topics in their ``topics.py`` with :func:`declare`; the registry imports those
modules when asked, so no app needs to know the others. :func:`ensure_topics` creates the
missing topics with their declared shape and checks the shape of those already there:
clients never auto-create topics, so a wrongly shaped topic can only come from outside, and
it is refused by name rather than used.
"""

from dataclasses import dataclass, field
from importlib import import_module

from django.apps import apps
from django.conf import settings
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import NoError, TopicAlreadyExistsError, for_code

from .config import client_options, dlq_name, topic_name

_REGISTRY: dict[str, "TopicSpec"] = {}

COMPACT = {"cleanup.policy": "compact"}


class TopicShapeMismatch(RuntimeError):
    """An existing topic differs from its declaration (the message names each difference)."""


class TopicMissing(RuntimeError):
    """A declared topic does not exist yet (``manage.py create_topics`` creates it)."""


@dataclass(frozen=True)
class TopicSpec:
    """A logical topic: its name, partition count, configs, and whether it has a DLQ.

    Replication and ``min.insync.replicas`` are the cluster's business, not the topic's:
    they come from ``KAFKA_REPLICATION_FACTOR`` and ``KAFKA_MIN_INSYNC_REPLICAS``.
    """

    name: str
    partitions: int = 1
    config: dict[str, str] = field(default_factory=dict)
    dead_letter: bool = True

    @property
    def physical_name(self) -> str:
        return topic_name(self.name)

    @property
    def compacted(self) -> bool:
        return "compact" in self.config.get("cleanup.policy", "")


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


@dataclass(frozen=True)
class _Wanted:
    """One physical topic to create or check."""

    name: str
    partitions: int
    config: dict[str, str]
    compacted: bool


def _cluster_config() -> dict[str, str]:
    config = {}
    if settings.KAFKA_MIN_INSYNC_REPLICAS:
        config["min.insync.replicas"] = str(settings.KAFKA_MIN_INSYNC_REPLICAS)
    return config


def _wanted(specs: list[TopicSpec]) -> list[_Wanted]:
    wanted = []
    for spec in specs:
        config = {**_cluster_config(), **spec.config}
        wanted.append(_Wanted(spec.physical_name, spec.partitions, config, spec.compacted))
        if spec.dead_letter:
            # The DLQ keeps the source's partitioning so a poison record keeps its key's
            # order, and keeps its records long enough for someone to look at them.
            dlq_config = {
                **_cluster_config(),
                "cleanup.policy": "delete",
                "retention.ms": str(settings.KAFKA_DLQ_RETENTION_MS),
            }
            wanted.append(_Wanted(dlq_name(spec.physical_name), spec.partitions, dlq_config, False))
    return wanted


def _admin() -> KafkaAdminClient:
    return KafkaAdminClient(**client_options(), client_id="eventplatform-admin")


def ensure_topics(specs: list[TopicSpec] | None = None) -> tuple[list[str], list[str]]:
    """Create the missing topics and verify the others; return ``(created, present)``.

    Raises :class:`TopicShapeMismatch` naming every difference of an existing topic.
    """
    wanted = _wanted(declared_topics() if specs is None else specs)
    admin = _admin()
    try:
        existing = set(admin.list_topics())
        missing = {
            topic.name: {
                "num_partitions": topic.partitions,
                "replication_factor": settings.KAFKA_REPLICATION_FACTOR,
                "configs": topic.config,
            }
            for topic in wanted
            if topic.name not in existing
        }
        created = []
        if missing:
            result = admin.create_topics(missing, raise_errors=False)
            for answer in result["topics"]:
                error = for_code(answer["error_code"])
                if error is NoError:
                    created.append(answer["name"])
                elif error is not TopicAlreadyExistsError:
                    # Another process may create one between list and create: checked below.
                    raise error(f"creating {answer['name']}: {answer.get('error_message')}")
            # Ready means usable: every partition has a leader in the metadata.
            admin.wait_for_topics(created)
        present = [topic for topic in wanted if topic.name not in created]
        problems = _shape_problems(admin, present)
        if problems:
            raise TopicShapeMismatch("; ".join(problems))
        return created, [topic.name for topic in present]
    finally:
        admin.close()


def check_topics(names: list[str]) -> None:
    """Verify that the declared topics ``names`` (logical) exist with their declared shape.

    Raises :class:`TopicMissing` or :class:`TopicShapeMismatch`; creates nothing.
    """
    declared = {spec.name: spec for spec in declared_topics()}
    unknown = [name for name in names if name not in declared]
    if unknown:
        raise TopicMissing(f"topics not declared by any installed app: {', '.join(unknown)}")
    wanted = [w for w in _wanted([declared[n] for n in names]) if not w.name.endswith(".dlq")]
    admin = _admin()
    try:
        existing = set(admin.list_topics())
        missing = [w.name for w in wanted if w.name not in existing]
        if missing:
            raise TopicMissing(
                f"topic {', '.join(missing)} does not exist: run manage.py create_topics"
            )
        problems = _shape_problems(admin, wanted)
        if problems:
            raise TopicShapeMismatch("; ".join(problems))
    finally:
        admin.close()


def absent_topics(names: set[str]) -> set[str]:
    """Which of the physical topic ``names`` the broker does not have.

    Raises a ``KafkaError`` when the broker cannot be asked, so a caller can tell a topic
    that is missing from a broker that is away.
    """
    admin = _admin()
    try:
        return set(names) - set(admin.list_topics())
    finally:
        admin.close()


def _shape_problems(admin: KafkaAdminClient, topics: list[_Wanted]) -> list[str]:
    if not topics:
        return []
    described = {t["name"]: t for t in admin.describe_topics([t.name for t in topics])}
    configs = admin.describe_configs(
        [
            # Every config, not a named few: the embedded broker drops the connection on a
            # request that names them.
            ConfigResource(ConfigResourceType.TOPIC, t.name)
            for t in topics
        ],
        config_filter="all",
    ).get("topic", {})
    problems = []
    for topic in topics:
        partitions = described.get(topic.name, {}).get("partitions") or []
        # More partitions than declared is how a topic scales out; fewer loses parallelism.
        # A compacted topic must match exactly: a key moved to another partition would be
        # held twice, with the stale copy never compacted away.
        if len(partitions) < topic.partitions or (
            topic.compacted and len(partitions) != topic.partitions
        ):
            problems.append(
                f"{topic.name} has {len(partitions)} partitions, declared {topic.partitions}"
            )
        replication = settings.KAFKA_REPLICATION_FACTOR
        replicas = {len(p.get("replica_nodes") or []) for p in partitions}
        if replication > 0 and replicas and min(replicas) < replication:
            problems.append(
                f"{topic.name} has replication factor {min(replicas)}, wanted {replication}"
            )
        actual = configs.get(topic.name)
        # A broker that reports no configs at all cannot be checked, only trusted.
        if actual:
            for key, value in topic.config.items():
                found = actual.get(key, {}).get("value")
                if found is not None and found != value:
                    problems.append(f"{topic.name} has {key}={found}, declared {value}")
    return problems


def delete_topics_with_prefix(prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (test and benchmark clean-up)."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = _admin()
    try:
        doomed = [name for name in admin.list_topics() if name.startswith(prefix)]
        if doomed:
            admin.delete_topics(doomed, raise_errors=False)
        return len(doomed)
    finally:
        admin.close()
