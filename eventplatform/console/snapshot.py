"""One snapshot of everything the console shows, as a JSON-ready dict.

Each section is collected on its own: a section whose source is down carries its error in
``errors`` and the others are still shown, so the console stays useful during an outage.
"""

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import close_old_connections
from kafka import TopicPartition

from eventplatform.kafka import dlq
from eventplatform.kafka.config import logical_name, topic_name

from . import platform_state
from .history import GroupHistory
from .kafka_state import GroupState, KafkaState

logger = logging.getLogger("eventplatform.console")

#: Pending records of one DLQ sent to the page; the count says how many there are.
DLQ_RECORDS_SHOWN = 100
#: Readiness probes every dependency (a broker that is down takes seconds to say so).
READINESS_EVERY_SECONDS = 5.0


def _iso(epoch_ms: int | None) -> str | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat() if epoch_ms else None


class Collector:
    """Takes snapshots; keeps what makes the next one cheap (clients, DLQ reads, history)."""

    def __init__(self):
        self.kafka = KafkaState()
        self.history = GroupHistory()
        self._dead_letters: dict[str, tuple[tuple, list[dlq.DeadLetter]]] = {}
        self._readiness: dict = {}
        self._readiness_at = 0.0

    def close(self) -> None:
        self.kafka.close()

    def collect(self) -> dict:
        close_old_connections()
        snapshot: dict = {"taken_at": datetime.now(UTC).isoformat(), "errors": {}}
        sections: list[tuple[str, Callable[[], object]]] = [
            ("topics", self.kafka.topics),
            ("groups", self._groups),
            ("dlqs", lambda: self._dlqs(snapshot.get("topics") or [])),
            ("outbox", platform_state.outbox),
            ("kv", self._kv),
            ("replica", platform_state.replica_lag),
            ("readiness", self._readiness_now),
            ("processes", platform_state.processes),
            ("stuck_imports", platform_state.stuck_imports),
        ]
        for name, collect in sections:
            try:
                snapshot[name] = collect()
            except Exception as error:  # one failing source must not hide the others
                snapshot["errors"][name] = f"{type(error).__name__}: {error}"[:500]
                if name in ("topics", "groups", "dlqs"):
                    # Connect afresh next time: the clients may be wedged on a lost broker.
                    self.kafka.close()
        return snapshot

    # -- sections ------------------------------------------------------------------------

    def _groups(self) -> list[dict]:
        groups = self.kafka.groups()
        now = time.time()
        self.history.forget_except({g.group for g in groups})
        last_records = self.kafka.record_times(
            {
                TopicPartition(p.topic, p.partition): p.position - 1
                for g in groups
                for p in g.partitions
                if p.position
            }
        )
        return [self._group(g, now=now, last_records=last_records) for g in groups]

    def _group(self, group: GroupState, *, now: float, last_records: dict) -> dict:
        rate = self.history.add(group.group, lag=group.lag, consumed=group.consumed, now=now)
        stamps = [
            last_records[tp]
            for p in group.partitions
            if (tp := TopicPartition(p.topic, p.partition)) in last_records
        ]
        return {
            "group": group.group,
            "name": group.consumer or logical_name(group.group).removeprefix("group."),
            "description": group.description,
            "state": group.state,
            "members": group.members,
            "lag": group.lag,
            "records_per_s": round(rate, 1),
            "last_record_at": _iso(max(stamps)) if stamps else None,
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "end": p.end,
                    "committed": p.committed,
                    "stored": p.stored,
                    "position": p.position,
                    "lag": p.lag,
                }
                for p in group.partitions
            ],
            "chart": self.history.chart(group.group),
        }

    def _dlqs(self, topics: list[dict]) -> list[dict]:
        ends = {t["name"]: tuple(t["end_offsets"]) for t in topics}
        views = []
        for topic in dlq.dead_letter_topics():
            if not ends.get(topic):
                continue  # not created yet
            cached = self._dead_letters.get(topic)
            if cached is None or cached[0] != ends[topic]:
                # Read again only when the log moved: a DLQ is read whole.
                cached = (ends[topic], dlq.read_all(topic, timeout_s=5))
                self._dead_letters[topic] = cached
            records = cached[1]
            done = dlq.handled(topic)
            waiting = [r for r in records if (r.partition, r.offset) not in done]
            views.append(
                {
                    "topic": topic,
                    "name": logical_name(topic),
                    "source": logical_name(topic.removesuffix(".dlq")),
                    "pending": len(waiting),
                    "handled": len(records) - len(waiting),
                    "records": [r.as_dict(value_chars=500) for r in waiting[:DLQ_RECORDS_SHOWN]],
                }
            )
        return views

    def _kv(self) -> list[dict]:
        stores = platform_state.kv_stores()
        topics = [topic_name(store["topic"]) for store in stores]
        ends = self.kafka.end_offsets(topics)
        changed = self.kafka.record_times({tp: end - 1 for tp, end in ends.items() if end > 0})
        for store, topic in zip(stores, topics, strict=True):
            stamps = [stamp for tp, stamp in changed.items() if tp.topic == topic]
            store["last_change_at"] = _iso(max(stamps)) if stamps else None
        return stores

    def _readiness_now(self) -> dict:
        if time.monotonic() - self._readiness_at >= READINESS_EVERY_SECONDS:
            self._readiness = platform_state.readiness()
            self._readiness_at = time.monotonic()
        return self._readiness
