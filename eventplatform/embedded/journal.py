"""The topic journal: what the memory-only embedded broker forgets, kept in files under var/.

Every compacted (stateful) topic, and every dead-letter topic (the records no consumer
could take, kept for someone to look at and replay), gets one append-only file,
``var/journal/<topic>.jsonl``,
one JSON line per record in log order: partition, key, value (null = tombstone), headers
and timestamp. A follower process appends each record the broker takes and syncs the files
to disk at least every half second, so a SIGKILL loses at most the last second.

On start (and after the broker was restarted) :func:`replay` produces every journaled
record again, into the same partition and in the same order, into the fresh, empty topics
before any other process runs. The restored log therefore holds exactly the journal's
records at offsets ``0 .. n-1`` of each partition, and the follower resumes each partition
at offset ``n``: nothing is journaled twice.
"""

import base64
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from eventplatform.kafka.config import client_options, consumer_options

logger = logging.getLogger("eventplatform.embedded.journal")

#: The longest a journaled record waits in memory before it is on disk.
SYNC_INTERVAL_S = 0.5
#: A journal file larger than this is compacted before it is replayed, as Kafka's log
#: cleaner would compact the topic: only the last record of each key stays.
COMPACT_ABOVE_BYTES = 64 * 1024 * 1024


class TopicRecreated(RuntimeError):
    """A followed topic was deleted and created again: the journal must be replayed first."""


@dataclass(frozen=True)
class Entry:
    """One journaled record."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp: int


def _b64(raw: bytes | None) -> str | None:
    return None if raw is None else base64.b64encode(raw).decode()


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def encode(entry: Entry) -> bytes:
    return (
        json.dumps(
            {
                "p": entry.partition,
                "k": _b64(entry.key),
                "v": _b64(entry.value),
                "h": [[name, _b64(value)] for name, value in entry.headers],
                "t": entry.timestamp,
            },
            separators=(",", ":"),
        ).encode()
        + b"\n"
    )


def journal_path(journal_dir: Path, topic: str) -> Path:
    return Path(journal_dir) / f"{topic}.jsonl"


def read_entries(path: Path) -> list[Entry]:
    """Every complete entry of a journal file; a line torn by a crash is cut off the file."""
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        # The last write was cut short (SIGKILL, power loss): that record was never synced.
        with open(path, "r+b") as file:
            file.truncate(complete)
        logger.warning("journal: cut a torn last line", extra={"path": str(path)})
    entries = []
    for line in data[:complete].splitlines():
        item = json.loads(line)
        entries.append(
            Entry(
                partition=item["p"],
                key=_unb64(item["k"]),
                value=_unb64(item["v"]),
                headers=[(name, _unb64(value)) for name, value in item["h"]],
                timestamp=item["t"],
            )
        )
    return entries


def compact(path: Path) -> int:
    """Keep only the last entry of each key (tombstones too, so a deletion stays one), in
    log order; the file is replaced in one step. Returns how many entries were dropped."""
    entries = read_entries(path)
    last = {(entry.partition, entry.key): index for index, entry in enumerate(entries)}
    kept = [
        entry for index, entry in enumerate(entries) if last[(entry.partition, entry.key)] == index
    ]
    temporary = path.with_suffix(".compacting")
    with open(temporary, "wb") as file:
        file.writelines(encode(entry) for entry in kept)
        file.flush()
        os.fsync(file.fileno())
    temporary.replace(path)
    return len(entries) - len(kept)


def replay(
    journal_dir: Path,
    topics: list[str],
    *,
    timeout: float = 120,
    compact_above: int = COMPACT_ABOVE_BYTES,
    uncompacted: frozenset[str] = frozenset(),
) -> int:
    """Produce every journaled record of ``topics`` into their (empty) topics, in order, and
    wait until the broker acknowledged all of them; returns how many were restored.

    A file over ``compact_above`` bytes is compacted first, so the journal stays bounded,
    except the files of ``uncompacted`` topics, whose every record counts (a dead-letter
    topic holds many records of one key)."""
    producer = KafkaProducer(
        **client_options(),
        acks="all",
        # One request in flight per partition keeps each partition's order through retries.
        max_in_flight_requests_per_connection=1,
        linger_ms=5,
        client_id="journal-replay",
    )
    try:
        futures = []
        for topic in topics:
            path = journal_path(journal_dir, topic)
            if topic not in uncompacted and path.exists() and path.stat().st_size > compact_above:
                dropped = compact(path)
                logger.info("journal: compacted", extra={"topic": topic, "dropped": dropped})
            for entry in read_entries(path):
                futures.append(
                    producer.send(
                        topic,
                        key=entry.key,
                        value=entry.value,
                        headers=entry.headers,
                        partition=entry.partition,
                        timestamp_ms=entry.timestamp,
                    )
                )
        producer.flush(timeout=timeout)
        for future in futures:
            future.get(timeout=timeout)  # raises the broker's error, if any
        return len(futures)
    finally:
        producer.close()


class Follower:
    """Appends each new record of ``topics`` to its journal file (one process runs this)."""

    def __init__(self, journal_dir: Path, topics: list[str]):
        self.journal_dir = Path(journal_dir)
        self.topics = topics
        self._stop = threading.Event()

    def stop(self, *_signal_args) -> None:
        self._stop.set()

    def run(self) -> None:
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        consumer = KafkaConsumer(
            **consumer_options(),
            group_id=None,
            enable_auto_commit=False,
            client_id="topic-journal",
        )
        files = {}
        try:
            positions = self._assign(consumer)
            ids = self._topic_ids(consumer)
            for topic in self.topics:
                files[topic] = open(journal_path(self.journal_dir, topic), "ab")  # noqa: SIM115
            logger.info("journal: following", extra={"positions": positions})
            dirty, synced_at, checked_at = set(), time.monotonic(), time.monotonic()
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=200, max_records=2000).items():
                    for record in records:
                        files[tp.topic].write(encode(_entry(record)))
                    dirty.add(tp.topic)
                now = time.monotonic()
                if dirty and now - synced_at >= SYNC_INTERVAL_S:
                    _sync(files[topic] for topic in dirty)
                    dirty, synced_at = set(), now
                if now - checked_at >= 2:
                    self._check_ids(consumer, ids)
                    checked_at = now
            _sync(files[topic] for topic in dirty)
        finally:
            for file in files.values():
                file.close()
            consumer.close()

    def _assign(self, consumer: KafkaConsumer) -> dict[str, int]:
        positions = {}
        assignment = []
        for topic in self.topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                raise RuntimeError(f"topic {topic!r} does not exist (create_topics first)")
            counts: dict[int, int] = {}
            for entry in read_entries(journal_path(self.journal_dir, topic)):
                counts[entry.partition] = counts.get(entry.partition, 0) + 1
            for partition in sorted(partitions):
                tp = TopicPartition(topic, partition)
                assignment.append(tp)
                positions[f"{topic}:{partition}"] = counts.get(partition, 0)
        consumer.assign(assignment)
        for tp in assignment:
            # The replayed records sit at 0 .. n-1: resume after them.
            consumer.seek(tp, positions[f"{tp.topic}:{tp.partition}"])
        return positions

    def _topic_ids(self, consumer: KafkaConsumer) -> dict[str, str]:
        consumer.topics()  # fresh metadata, ids included
        return {topic: str(consumer._cluster.topic_id(topic) or "") for topic in self.topics}

    def _check_ids(self, consumer: KafkaConsumer, known: dict[str, str]) -> None:
        for topic, current in self._topic_ids(consumer).items():
            if known[topic] and current and current != known[topic]:
                raise TopicRecreated(
                    f"topic {topic!r} was recreated (broker restarted?): replay the journal "
                    "before following again"
                )


def _entry(record) -> Entry:
    return Entry(
        partition=record.partition,
        key=record.key,
        value=record.value,
        headers=list(record.headers or []),
        timestamp=record.timestamp,
    )


def _sync(files) -> None:
    for file in files:
        file.flush()
        os.fsync(file.fileno())


def stateful_topics() -> list[str]:
    """Physical names of every compacted topic: the state that lives only in Kafka."""
    from eventplatform.kafka.topics import declared_topics

    return [spec.physical_name for spec in declared_topics() if spec.compacted]


def dead_letter_topics() -> list[str]:
    """Physical names of every dead-letter topic: records that would otherwise be lost."""
    from eventplatform.kafka.config import dlq_name
    from eventplatform.kafka.topics import declared_topics

    return [dlq_name(spec.physical_name) for spec in declared_topics() if spec.dead_letter]


def journaled_topics() -> list[str]:
    return stateful_topics() + dead_letter_topics()


def main() -> None:
    """``python -m eventplatform.embedded.journal DIR``: follow until SIGTERM."""
    import sys

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
    django.setup()
    follower = Follower(Path(sys.argv[1]), journaled_topics())
    signal.signal(signal.SIGTERM, follower.stop)
    signal.signal(signal.SIGINT, follower.stop)
    follower.run()


if __name__ == "__main__":
    main()
