"""The topic journal of the embedded stack: what it writes, how it is replayed into fresh
topics (same partitions, order, headers and timestamps), and that following resumes after
the replayed records without journaling any twice."""

import threading
import uuid

import pytest
from django.conf import settings

from eventplatform.embedded.journal import (
    Follower,
    journal_path,
    journaled_topics,
    read_entries,
    replay,
)
from eventplatform.kafka.config import dlq_name, topic_name
from eventplatform.kafka.producer import reset_producer, send_and_wait
from eventplatform.kafka.topics import delete_topics_with_prefix, ensure_topics
from kvconfig import stores as kv_store
from kvconfig.history import key_history
from kvconfig.stores import get_store
from tests.helpers import read_topic, wait_until


def _follow(journal_dir, topics) -> tuple[Follower, threading.Thread]:
    follower = Follower(journal_dir, topics)
    thread = threading.Thread(target=follower.run)
    thread.start()
    return follower, thread


def _journaled(journal_dir, topic) -> int:
    return len(read_entries(journal_path(journal_dir, topic)))


def _journal_until(journal_dir, topic, count: int) -> None:
    """Follow ``topic`` until ``count`` of its records are journaled, then stop."""
    follower, thread = _follow(journal_dir, [topic])
    wait_until(lambda: _journaled(journal_dir, topic) == count, timeout=20)
    follower.stop()
    thread.join(timeout=10)


@pytest.fixture
def second_topics(kafka):
    """The declared topics again under another prefix: a 'restarted broker' to replay into."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    kv_store.shutdown()  # its reader follows this test's topics
    reset_producer()
    delete_topics_with_prefix(prefix)


def test_replay_restores_records_in_order_and_following_resumes_after_them(
    kafka, tmp_path, second_topics
):
    store = get_store("supported-countries")
    store.put("SS", {"name": "South Sudan"}, editor="alice")
    store.put("JP", {"name": "Japan"}, editor="bob")
    store.delete("JP", editor="carol")
    source = topic_name("kv.supported-countries")
    journal = tmp_path / "journal"
    _journal_until(journal, source, 3)
    original = read_topic(source)

    # A crash in the middle of a write leaves half a line: it is cut off, not replayed.
    with open(journal_path(journal, source), "ab") as file:
        file.write(b'{"p":0,"k":')
    settings.KAFKA_TOPIC_PREFIX = second_topics
    ensure_topics()
    target = topic_name("kv.supported-countries")
    journal_path(journal, source).rename(journal_path(journal, target))
    assert replay(journal, [target]) == 3

    restored = read_topic(target)
    assert [(r.partition, r.key, r.value, r.headers, r.timestamp) for r in restored] == [
        (r.partition, r.key, r.value, r.headers, r.timestamp) for r in original
    ]
    assert dict(get_store("supported-countries").snapshot()) == {"SS": {"name": "South Sudan"}}
    assert [r.editor for r in key_history(namespace="supported-countries", key="JP")] == [
        "carol",
        "bob",
    ]

    follower, thread = _follow(journal, [target])
    try:
        get_store("supported-countries").put("KE", {"name": "Kenya"}, editor="dave")
        wait_until(lambda: _journaled(journal, target) == 4, timeout=20)
    finally:
        follower.stop()
        thread.join(timeout=10)
    entries = read_entries(journal_path(journal, target))
    assert [e.key for e in entries] == [b"SS", b"JP", b"JP", b"KE"]  # none twice
    assert entries[2].value is None
    assert dict(entries[3].headers)["editor"] == b"dave"


def test_a_large_journal_is_compacted_to_the_last_record_of_each_key_before_replay(
    kafka, tmp_path, second_topics
):
    store = get_store("supported-countries")
    store.put("SS", {"name": "Sudan"}, editor="alice")
    store.put("JP", {"name": "Japan"}, editor="alice")
    store.put("SS", {"name": "South Sudan"}, editor="bob")
    store.delete("JP", editor="bob")
    source = topic_name("kv.supported-countries")
    journal = tmp_path / "journal"
    _journal_until(journal, source, 4)

    settings.KAFKA_TOPIC_PREFIX = second_topics
    ensure_topics()
    target = topic_name("kv.supported-countries")
    journal_path(journal, source).rename(journal_path(journal, target))
    assert replay(journal, [target], compact_above=10) == 2
    assert [(r.key, r.value) for r in read_topic(target)] == [
        (b"SS", b'{"name":"South Sudan"}'),
        (b"JP", None),  # the deletion stays a deletion
    ]
    assert _journaled(journal, target) == 2


def test_dead_letters_are_journaled_and_replayed_whole_however_large_the_journal(
    kafka, tmp_path, second_topics
):
    # Each consumer's dead letters are followed with the stateful topics.
    assert dlq_name(topic_name("sites.metadata")) in journaled_topics()
    source = dlq_name(topic_name("test.records"))
    for n in range(3):  # one key, as when one site's events keep failing
        send_and_wait(source, key="site-1", value=f"poison {n}".encode())
    journal = tmp_path / "journal"
    _journal_until(journal, source, 3)

    settings.KAFKA_TOPIC_PREFIX = second_topics
    ensure_topics()
    target = dlq_name(topic_name("test.records"))
    journal_path(journal, source).rename(journal_path(journal, target))
    # Well over the size at which a stateful topic's journal is compacted: all three stay.
    assert replay(journal, [target], compact_above=10, uncompacted=frozenset({target})) == 3
    assert [r.value for r in read_topic(target)] == [b"poison 0", b"poison 1", b"poison 2"]
