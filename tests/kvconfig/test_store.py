"""KVStore against the real broker: bootstrap, tombstones, subscriptions, writes, fork."""

import gc
import json
import logging
import os
import threading
import time

import pytest

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import get_producer, send, wait_all
from eventplatform.kafka.retry import is_outage
from kvconfig.schema import KVValidationError
from kvconfig.store import KVError, KVKeyNotFound
from kvconfig.stores import get_store, shutdown
from tests.helpers import read_topic, recreate_topic, wait_until

from .conftest import topic_records


def _produce(namespace: str, records, *, batch: int = 1000) -> None:
    """Produce (key, raw value) pairs in batches, as another tool would."""
    topic = topic_name(f"kv.{namespace}")
    futures = []
    for i, (key, raw) in enumerate(records, 1):
        futures.append(send(topic, key=key, value=raw, headers={"editor": "test"}))
        if i % batch == 0:
            wait_all(futures)
            futures = []
    wait_all(futures)


def test_a_store_becomes_ready_while_a_writer_produces_50_records_a_second(kafka):
    _produce("test-bulk", [(f"k{i}", json.dumps({"name": "seed"}).encode()) for i in range(500)])
    stop = threading.Event()

    def write_steadily():
        n = 1000
        while not stop.is_set():
            send(topic_name("kv.test-bulk"), key=f"k{n}", value=b'{"name":"live"}').get(10)
            n += 1
            time.sleep(0.02)

    writer = threading.Thread(target=write_steadily, daemon=True)
    writer.start()
    try:
        time.sleep(1)  # the stream is flowing before the store starts
        store = get_store("test-bulk").wait_ready(20)
        assert all(store.get(f"k{i}") == {"name": "seed"} for i in range(500))
    finally:
        stop.set()
        writer.join(10)


def test_a_store_boots_correctly_from_a_log_the_cleaner_has_compacted(kafka, kafka_broker):
    topic = topic_name("kv.test-compacted")
    _produce("test-compacted", [(f"k{i}", b'{"name":"v1"}') for i in range(100)])
    _produce("test-compacted", [(f"k{i}", b'{"name":"v2"}') for i in range(100)])
    _produce("test-compacted", [(f"k{i}", None) for i in range(10)])
    expected = {f"k{i}": {"name": "v2"} for i in range(10, 100)}
    if isinstance(kafka_broker, str):  # the embedded broker never compacts
        # New writes roll segments (segment.ms), and the cleaner compacts the rolled ones.
        def compacted() -> bool:
            _produce("test-compacted", [("k5000", b'{"name":"roll"}')])
            return len(read_topic(topic)) < 200

        wait_until(compacted, timeout=90, interval=1, message="the log cleaner never ran")
        expected["k5000"] = {"name": "roll"}
    shutdown()
    store = get_store("test-compacted").wait_ready(30)
    assert dict(store.items()) == expected


def test_bootstrap_of_20000_keys_with_tombstones_and_bad_records(kafka):
    records = [(f"k{i}", json.dumps({"name": f"n{i}"}).encode()) for i in range(20_000)]
    records += [(f"k{i}", None) for i in range(0, 20_000, 10)]  # tombstones
    records += [(f"k{i}", json.dumps({"name": f"v2-{i}"}).encode()) for i in range(5)]
    records += [
        ("bad key", b'{"name": "x"}'),
        ("k20001", b"not json"),
        ("k20002", b'{"title": "wrong schema"}'),
    ]
    _produce("test-bulk", records)

    store = get_store("test-bulk").wait_ready(60)

    assert store.ready
    assert len(store) == 20_000 - 2_000 + 1  # k0 came back after its tombstone
    assert store["k0"] == {"name": "v2-0"}
    assert store.get("k4") == {"name": "v2-4"}
    assert "k10" not in store and "k11" in store
    assert store["k19999"] == {"name": "n19999"}
    assert "k20001" not in store and "k20002" not in store
    assert store.skipped == 3
    assert dict(store.snapshot()) == dict(store.items())
    # The reader survived the bad records and still applies writes.
    store.put("k20003", {"name": "after"}, editor="test")
    assert store["k20003"] == {"name": "after"}


# Values the standard library's json would have taken (NaN, a lone surrogate), one it
# would have crashed on (nesting past its recursion limit), and keys that are not text.
UNREADABLE = [
    ("k1", b'{"name": NaN}'),
    ("k2", b'{"name": "\\ud800"}'),
    ("k3", b"[" * 1500 + b"]" * 1500),
    (b"\xffk4", b'{"name": "x"}'),
]


def test_unreadable_records_are_skipped_with_a_warning_saying_where(kafka, caplog):
    caplog.set_level(logging.WARNING, logger="kvconfig.store")
    _produce("test-bulk", [*UNREADABLE, ("k0", b'{"name": "good"}')])
    store = get_store("test-bulk").wait_ready(30)
    assert dict(store.items()) == {"k0": {"name": "good"}}
    changes = []
    store.subscribe(lambda key, old, new: changes.append((key, old, new)))

    def skip_warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "invalid KV record skipped"]

    _produce("test-bulk", [*UNREADABLE, ("k5", b'{"name": "after"}')])
    # Subscribers are told after the write is applied, and the records land on several
    # partitions: k5's may be read before the others' bad records.
    wait_until(lambda: changes, timeout=10, message="the reader stopped after bad records")
    wait_until(lambda: len(skip_warnings()) >= 8, timeout=10, message="a bad record unreported")

    assert dict(store.items()) == {"k0": {"name": "good"}, "k5": {"name": "after"}}
    assert changes == [("k5", None, {"name": "after"})]
    assert store.skipped == 8
    warnings = skip_warnings()
    assert len({(w.partition, w.offset) for w in warnings}) == 8
    assert {w.topic for w in warnings} == {topic_name("kv.test-bulk")}
    errors = sorted(w.error for w in warnings)
    assert (
        errors[:2]
        == [
            "key is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: "
            "invalid start byte"
        ]
        * 2
    )
    assert all(e.startswith("value is not JSON: ") for e in errors[2:])


def test_an_invalid_latest_record_leaves_its_key_without_a_value_in_every_process(kafka):
    store = get_store("test-bulk").wait_ready(30)
    store.put("k1", {"name": "v1"}, editor="test")
    store.put("k2", {"name": "kept"}, editor="test")
    changes = []
    store.subscribe(lambda key, old, new: changes.append((key, old, new)))

    # Written by a tool that does not validate: the log's latest record for k1 is invalid,
    # and once compaction drops v1 no process starting later could ever read v1 again.
    _produce("test-bulk", [("k1", b'{"title": "wrong schema"}'), ("k3", b'{"name": "after"}')])
    wait_until(lambda: "k1" not in store and "k3" in store, message="the records were not applied")

    expected = {"k2": {"name": "kept"}, "k3": {"name": "after"}}
    assert dict(store.items()) == expected
    assert ("k1", {"name": "v1"}, None) in changes
    assert store.skipped == 1
    shutdown()
    assert dict(get_store("test-bulk").wait_ready(30).items()) == expected


def test_a_bootstrap_leaves_the_garbage_collector_as_it_found_it(kafka):
    _produce("test-bulk", [(f"k{i}", b'{"name": "v"}') for i in range(2000)])
    assert gc.isenabled()
    assert len(get_store("test-bulk").wait_ready(30)) == 2000
    assert gc.isenabled()
    shutdown()
    gc.disable()  # as a process that manages its collector itself would have it
    try:
        assert len(get_store("test-bulk").wait_ready(30)) == 2000
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_put_and_delete_are_visible_at_once_and_carry_editor(kafka):
    store = get_store("supported-countries")
    assert len(store) == 0
    assert store.put("SS", {"name": " South Sudan "}, editor="alice") == {"name": "South Sudan"}
    assert store["SS"] == {"name": "South Sudan"}
    store.delete("SS", editor="bob")
    assert "SS" not in store
    with pytest.raises(KeyError):
        store["SS"]
    with pytest.raises(KVKeyNotFound, match="no key 'SS' in namespace 'supported-countries'"):
        store.delete("SS", editor="bob")
    assert topic_records("supported-countries") == [("SS", {"name": "South Sudan"}), ("SS", None)]


def test_subscribers_get_every_change_in_order(kafka):
    store = get_store("supported-countries")
    store.put("FR", {"name": "France"}, editor="t")  # before subscribing: not reported
    changes = []
    store.subscribe(lambda key, old, new: changes.append((key, old, new)))
    store.put("SS", {"name": "South Sudan"}, editor="t")
    store.put("SS", {"name": "South Sudan"}, editor="t")  # same value: no change
    store.put("SS", {"name": "Republic of South Sudan"}, editor="t")
    store.delete("SS", editor="t")
    store.put_many([("DE", {"name": "Germany"}), ("FR", {"name": "la France"})], editor="t")
    expected = [
        ("SS", None, {"name": "South Sudan"}),
        ("SS", {"name": "South Sudan"}, {"name": "Republic of South Sudan"}),
        ("SS", {"name": "Republic of South Sudan"}, None),
        ("DE", None, {"name": "Germany"}),
        ("FR", {"name": "France"}, {"name": "la France"}),
    ]
    wait_until(lambda: len(changes) >= len(expected), timeout=10)
    assert changes == expected


def test_bad_writes_raise_and_write_nothing(kafka):
    store = get_store("time-zones")
    bad = [
        ("usa", {"zones": ["America/New_York"], "primary": "America/New_York"}),
        ("U1", {"zones": ["America/New_York"], "primary": "America/New_York"}),
        ("", {"zones": ["America/New_York"], "primary": "America/New_York"}),
        ("SS", {"zones": ["Africa/Juba"]}),
        ("SS", {"zones": ["Mars/Olympus"], "primary": "Mars/Olympus"}),
        ("SS", "Africa/Juba"),
    ]
    for key, value in bad:
        with pytest.raises(KVValidationError):
            store.put(key, value, editor="t")
    with pytest.raises(KVValidationError):
        store.put_many(
            [("SS", {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}), *bad], editor="t"
        )
    with pytest.raises(KVValidationError, match="editor is required"):
        store.put("SS", {"zones": ["Africa/Juba"], "primary": "Africa/Juba"}, editor="")
    assert topic_records("time-zones") == []


def test_a_missing_topic_is_a_clear_error_not_a_hang(kafka_broker, settings):
    settings.KV_READY_TIMEOUT = 1.5
    store = get_store("supported-countries")  # no topics under this test's prefix
    with pytest.raises(KVError, match=r"did not catch up .* does not exist \(run manage.py create"):
        store.get("US")


def test_a_store_that_cannot_catch_up_is_an_outage_a_consumer_waits_out(kafka_broker, settings):
    settings.KV_READY_TIMEOUT = 0.5
    with pytest.raises(KVError) as raised:
        get_store("supported-countries").wait_ready()  # no topics under this test's prefix
    assert is_outage(raised.value)  # the runtime retries it without bound, never DLQs it
    assert str(raised.value).startswith("KV store 'supported-countries' did not catch up")


def test_a_forked_child_restarts_its_reader(kafka):
    store = get_store("supported-countries")
    store.put("US", {"name": "United States"}, editor="parent")
    get_producer()  # the child must not reuse the parent's producer either
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read, write, report, and leave without running pytest's exit
        try:
            child = get_store("supported-countries")
            seen = child.get("US")
            child.put("JP", {"name": "Japan"}, editor="child")
            os.write(write_end, json.dumps({"US": seen, "JP": child.get("JP")}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert report == {"US": {"name": "United States"}, "JP": {"name": "Japan"}}
    wait_until(lambda: "JP" in store, timeout=10, message="parent never saw the child's write")


def test_shutdown_stops_the_reader_and_a_new_store_starts_afresh(kafka):
    get_store("supported-countries").put("US", {"name": "United States"}, editor="t")
    shutdown()
    assert get_store("supported-countries")["US"] == {"name": "United States"}


def test_a_topic_deleted_and_created_again_is_read_anew(kafka):
    """An operator deletes a namespace's topic and creates it again with other contents: a
    running store serves what the new topic holds (keys it lacks are gone) and its
    subscribers hear each change, where it used to keep the old values for ever."""
    store = get_store("test-bulk")
    store.put_many([("k1", {"name": "one"}), ("k2", {"name": "two"})], editor="t")
    changes = []
    store.subscribe(lambda key, old, new: changes.append((key, old, new)))
    recreate_topic(topic_name("kv.test-bulk"))
    _produce("test-bulk", [("k2", json.dumps({"name": "two, again"}).encode())])
    _produce("test-bulk", [("k3", json.dumps({"name": "three"}).encode())])

    wait_until(
        lambda: dict(store.items()) == {"k2": {"name": "two, again"}, "k3": {"name": "three"}},
        timeout=30,
        message=f"the store kept the old topic's values: {dict(store.items())}",
    )
    wait_until(lambda: len(changes) >= 3, timeout=5)
    assert sorted(changes) == [
        ("k1", {"name": "one"}, None),
        ("k2", {"name": "two"}, {"name": "two, again"}),
        ("k3", None, {"name": "three"}),
    ]
    # Writes after it land as before, and are seen.
    store.put("k4", {"name": "four"}, editor="t")
    assert store.get("k4") == {"name": "four"}
