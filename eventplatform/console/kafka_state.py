"""What the brokers say: topics with their partitions, end offsets and configs, and the
platform's consumer groups with their members and committed offsets.

One admin client and one offset reader per process, kept between samples and dropped after
a failure (the next sample connects afresh). Only the sampler thread calls these.
"""

import time
from dataclasses import dataclass, field

from django.db import DatabaseError, connections
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.protocol.admin import DescribeGroupsRequest

from eventplatform.kafka.config import client_options, consumer_options, topic_name
from eventplatform.kafka.registry import registered
from eventplatform.kafka.topics import declared_topics
from eventplatform.models import ConsumerOffset
from eventplatform.routers import DEFAULT, PROJECTIONS

#: The topic configs the console shows.
SHOWN_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas")
#: Configs change rarely; asking for them at every sample would only cost the broker.
CONFIG_REFRESH_SECONDS = 30.0
#: Databases where consumers may keep offsets beside their effects.
OFFSET_DATABASES = (DEFAULT, PROJECTIONS)


class _AdminClient(KafkaAdminClient):
    """The admin client, describing groups without asking for authorised operations.

    The embedded broker answers that field with a value the client cannot decode, and the
    console has no use for it.
    """

    def _describe_groups_request(self, group_ids):
        return DescribeGroupsRequest(groups=list(group_ids), include_authorized_operations=False)

    def _process_acl_operations(self, obj):
        obj.pop("authorized_operations", None)
        return obj


@dataclass
class PartitionPosition:
    """A group's place in one partition."""

    topic: str
    partition: int
    end: int
    committed: int | None
    stored: int | None

    @property
    def position(self) -> int | None:
        # Offsets kept beside the effects are the truth for the consumers that keep them.
        return self.stored if self.stored is not None else self.committed

    @property
    def lag(self) -> int:
        return max(0, self.end - (self.position or 0))


@dataclass
class GroupState:
    group: str
    state: str
    consumer: str = ""  # the registered consumer's name, if it is one
    description: str = ""
    members: list[dict] = field(default_factory=list)
    partitions: list[PartitionPosition] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def consumed(self) -> int:
        """Sum of positions: how far the group got, for its records per second."""
        return sum(p.position or 0 for p in self.partitions)


class KafkaState:
    """Reads topics and groups from the broker for one process's sampler."""

    def __init__(self):
        self._admin: KafkaAdminClient | None = None
        self._reader: KafkaConsumer | None = None
        self._stamper: KafkaConsumer | None = None
        self._configs: dict[str, dict[str, str]] = {}
        self._configs_at = 0.0
        self._timestamps: dict[tuple[TopicPartition, int], int | None] = {}

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
        if self._reader is not None:
            self._reader.close()
        if self._stamper is not None:
            self._stamper.close()
        self._admin = self._reader = self._stamper = None

    def _clients(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None:
            self._admin = _AdminClient(**client_options(), client_id="eventplatform-console")
        if self._reader is None:
            self._reader = KafkaConsumer(
                **consumer_options(), group_id=None, client_id="eventplatform-console"
            )
        return self._admin, self._reader

    def end_offsets(self, topics: list[str]) -> dict[TopicPartition, int]:
        """Each partition's end offset, for the topics that exist."""
        _, reader = self._clients()
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(reader.partitions_for_topic(topic) or ())
        ]
        return reader.end_offsets(partitions) if partitions else {}

    def record_times(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """The timestamp (ms) of the record at each offset, for those that could be read.

        A record's timestamp never changes, so each is fetched once and remembered.
        """
        missing = {tp: o for tp, o in offsets.items() if (tp, o) not in self._timestamps}
        if missing:
            if self._stamper is None:
                self._stamper = KafkaConsumer(
                    **consumer_options(), group_id=None, client_id="eventplatform-console"
                )
            self._stamper.assign(list(missing))
            for tp, offset in missing.items():
                self._stamper.seek(tp, offset)
            found: dict[TopicPartition, int] = {}
            deadline = time.monotonic() + 1.0
            while len(found) < len(missing) and time.monotonic() < deadline:
                for tp, records in self._stamper.poll(timeout_ms=100).items():
                    # A compacted log may have lost that very offset: the next record says
                    # when the partition last changed closely enough.
                    if records and tp not in found:
                        found[tp] = records[0].timestamp
                        self._stamper.pause(tp)
            self._stamper.resume(*self._stamper.paused())
            for tp, offset in missing.items():
                if tp in found:
                    self._timestamps[(tp, offset)] = found[tp]
            if len(self._timestamps) > 10_000:
                self._timestamps.clear()
        return {
            tp: self._timestamps[(tp, o)]
            for tp, o in offsets.items()
            if self._timestamps.get((tp, o)) is not None
        }

    def topics(self) -> list[dict]:
        """Every declared topic and its DLQ: partitions, end offsets and shown configs."""
        names = []
        for spec in declared_topics():
            names.append(spec.physical_name)
            if spec.dead_letter:
                names.append(f"{spec.physical_name}.dlq")
        ends = self.end_offsets(names)
        configs = self._topic_configs(names)
        rows = []
        for name in names:
            offsets = {tp.partition: end for tp, end in ends.items() if tp.topic == name}
            rows.append(
                {
                    "name": name,
                    "exists": bool(offsets),
                    "partitions": len(offsets),
                    "end_offsets": [offsets[p] for p in sorted(offsets)],
                    "records": sum(offsets.values()),
                    "config": {key: configs.get(name, {}).get(key, "") for key in SHOWN_CONFIGS},
                }
            )
        return rows

    def _topic_configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        if time.monotonic() - self._configs_at < CONFIG_REFRESH_SECONDS and set(names) <= set(
            self._configs
        ):
            return self._configs
        admin, reader = self._clients()
        existing = [name for name in names if reader.partitions_for_topic(name)]
        described = admin.describe_configs(
            # Every config, not a named few: the embedded broker drops the connection on a
            # request that names them (and then reports only those set on the topic).
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in existing],
            config_filter="all",
        ).get("topic", {})
        self._configs = {
            name: {key: str(entry.get("value", "")) for key, entry in entries.items()}
            for name, entries in described.items()
        }
        self._configs_at = time.monotonic()
        return self._configs

    def groups(self) -> list[GroupState]:
        """The platform's consumer groups, positioned: every registered consumer, and any
        other group under this environment's prefix that the broker or a database knows."""
        admin, _ = self._clients()
        prefix = topic_name("group.")
        declared = {declaration.group: declaration for declaration in registered()}
        listed = {
            g["group_id"]: g.get("group_state", "")
            for g in admin.list_groups()
            if g["group_id"].startswith(prefix)
        }
        stored = _stored_offsets(prefix)
        names = sorted(set(listed) | set(declared) | {group for group, _ in stored})
        if not names:
            return []
        # A group the broker does not list has no members to describe nor offsets to fetch.
        described = admin.describe_groups(sorted(listed)) if listed else {}
        committed = admin.list_group_offsets({name: None for name in listed}) if listed else {}
        topics_of: dict[str, set[str]] = {
            name: set(declared[name].topics) if name in declared else set() for name in names
        }
        for name, offsets in committed.items():
            topics_of[name] |= {tp.topic for tp in offsets}
        for group, topic in stored:
            topics_of[group].add(topic)
        for name, description in described.items():
            for member in description.get("members") or []:
                metadata = member.get("member_metadata")
                if isinstance(metadata, dict):
                    topics_of[name] |= set(metadata.get("topics") or [])
        ends = self.end_offsets(sorted(set().union(*topics_of.values())))
        groups = []
        for name in names:
            description = described.get(name, {})
            group_committed = committed.get(name, {})
            positions = [
                PartitionPosition(
                    topic=tp.topic,
                    partition=tp.partition,
                    end=end,
                    committed=_offset(group_committed.get(tp)),
                    stored=stored.get((name, tp.topic), {}).get(tp.partition),
                )
                for tp, end in sorted(ends.items())
                if tp.topic in topics_of[name]
            ]
            groups.append(
                GroupState(
                    group=name,
                    consumer=declared[name].name if name in declared else "",
                    description=declared[name].description if name in declared else "",
                    state=description.get("group_state")
                    or listed.get(name)
                    or "no member has joined",
                    members=[_member(m) for m in description.get("members") or []],
                    partitions=positions,
                )
            )
        return groups


def _offset(meta) -> int | None:
    if meta is None or meta.offset is None or meta.offset < 0:
        return None
    return meta.offset


def _member(member: dict) -> dict:
    assignment = member.get("member_assignment")
    assigned = []
    if isinstance(assignment, dict):
        for entry in assignment.get("assigned_partitions") or []:
            assigned += [f"{entry['topic']}[{p}]" for p in entry.get("partitions") or []]
    return {
        "id": member.get("member_id", ""),
        "client": member.get("client_id") or "",
        "host": member.get("client_host") or "",
        "assigned": assigned,
    }


def _stored_offsets(prefix: str) -> dict[tuple[str, str], dict[int, int]]:
    """Offsets consumers keep in a database: ``(group, topic) → {partition: next offset}``."""
    stored: dict[tuple[str, str], dict[int, int]] = {}
    for database in OFFSET_DATABASES:
        try:
            rows = list(
                ConsumerOffset.objects.using(database)
                .filter(group__startswith=prefix)
                .values_list("group", "topic", "partition", "next_offset")
            )
        except DatabaseError:
            # A database that is down hides its offsets, not the whole console; its next
            # use connects afresh.
            connections[database].close()
            continue
        for group, topic, partition, offset in rows:
            stored.setdefault((group, topic), {})[partition] = offset
    return stored
