"""KV store benchmarks, each a ratio against a baseline measured in the same run.

- ``store.get()`` against a plain ``dict`` look-up on the same data (at most 1.5×);
- bootstrap of 100,000 keys against a raw consumer reading the same topic (at least 0.95);
- write-to-visible latency in another process (p50/p99 over 1,000 writes; p99 at most
  15 ms), against the producer's acknowledgement round trip.

Run: ``.venv/bin/python -m bench.kv [--only get|bootstrap|latency]``
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.harness import Timer, benchmark_environment, percentile, report

KEYS = 100_000
LOOKUPS = 1_000_000
WRITES = 1_000
ROOT = Path(__file__).resolve().parent.parent


def _bench_namespace():
    from kvconfig.namespaces import register
    from kvconfig.schema import KeyPattern, Namespace, Text

    return register(
        Namespace(
            name="bench-bulk",
            description="Benchmark keys",
            key_rule=KeyPattern(r"k\d+", "'k' followed by digits"),
            fields=(Text("name", max_length=300),),
            partitions=3,
        )
    )


def _fill(topic: str) -> None:
    from eventplatform.kafka.producer import send, wait_all

    padding = "x" * 180  # ~200-byte values, the size of a typical configuration entry
    futures = []
    for i in range(KEYS):
        value = json.dumps({"name": f"{i}{padding}"}).encode()
        futures.append(send(topic, key=f"k{i}", value=value))
        if len(futures) == 5000:
            wait_all(futures)
            futures = []
    wait_all(futures)


def _raw_read(topic: str) -> float:
    """Seconds for a bare consumer to read every record of the topic."""
    from kafka import KafkaConsumer, TopicPartition

    from eventplatform.kafka.config import client_options

    with Timer() as timer:
        consumer = KafkaConsumer(**client_options(), group_id=None, enable_auto_commit=False)
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = 0
        while seen < KEYS:
            seen += sum(len(r) for r in consumer.poll(timeout_ms=500, max_records=5000).values())
        consumer.close()
    return timer.seconds


def _store_bootstrap(name: str) -> tuple[float, int]:
    from kvconfig.stores import get_store, shutdown

    shutdown()
    with Timer() as timer:
        store = get_store(name).wait_ready(120)
    return timer.seconds, len(store)


def bench_get(name: str) -> dict[str, str]:
    from kvconfig.stores import get_store

    store = get_store(name).wait_ready(120)
    plain = dict(store.snapshot())
    keys = [f"k{i}" for i in range(0, KEYS, KEYS // 1000)] * (LOOKUPS // 1000)
    get = store.get
    with Timer() as store_timer:
        for key in keys:
            get(key)
    lookup = plain.get
    with Timer() as dict_timer:
        for key in keys:
            lookup(key)
    ratio = store_timer.seconds / dict_timer.seconds
    return {
        "store.get() per look-up": f"{store_timer.seconds / len(keys) * 1e9:.0f} ns",
        "dict.get() per look-up": f"{dict_timer.seconds / len(keys) * 1e9:.0f} ns",
        "ratio store/dict": f"{ratio:.2f}x (maximum 1.5x) {_verdict(ratio <= 1.5)}",
    }


def bench_bootstrap(name: str, topic: str) -> dict[str, str]:
    with Timer() as fill:
        _fill(topic)
    raw, stored = [], []
    for _ in range(2):  # alternate, keep the best of each: the machine is shared
        raw.append(_raw_read(topic))
        seconds, count = _store_bootstrap(name)
        assert count == KEYS, f"store bootstrapped {count} keys, expected {KEYS}"
        stored.append(seconds)
    ratio = min(raw) / min(stored)
    return {
        "produce 100k keys": f"{fill.seconds:.2f} s",
        "raw consumer read": f"{min(raw):.2f} s ({KEYS / min(raw):,.0f} rec/s)",
        "KVStore bootstrap to ready": f"{min(stored):.2f} s ({KEYS / min(stored):,.0f} rec/s)",
        "ratio store/raw throughput": f"{ratio:.2f} (minimum 0.95) {_verdict(ratio >= 0.95)}",
    }


def bench_latency() -> dict[str, str]:
    from eventplatform.kafka.config import topic_name
    from eventplatform.kafka.producer import send_and_wait
    from kvconfig.stores import get_store

    store = get_store("supported-countries")
    store.wait_ready(60)
    watcher = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "kv", "watch", "supported-countries"],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        text=True,
    )
    seen: dict[str, float] = {}
    arrived = threading.Condition()
    ready = threading.Event()

    def read() -> None:
        for line in watcher.stdout:
            now = time.perf_counter()
            event = json.loads(line)
            if "ready" in event:
                ready.set()
            elif event.get("new"):
                with arrived:
                    seen[event["new"]["name"]] = now
                    arrived.notify_all()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the watching process never caught up")
        latencies = []
        for i in range(WRITES):
            name = f"write {i}"
            started = time.perf_counter()
            store.put("SS", {"name": name}, editor="bench")
            with arrived:
                if not arrived.wait_for(lambda n=name: n in seen, timeout=10):
                    raise RuntimeError(f"{name} never reached the other process")
            latencies.append(seen[name] - started)
        acks = []
        topic = topic_name("kv.supported-countries")
        for i in range(200):
            with Timer() as timer:
                send_and_wait(topic, key="GB", value=json.dumps({"name": f"a{i}"}).encode())
            acks.append(timer.seconds)
    finally:
        watcher.kill()
        watcher.wait()
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    ack = percentile(acks, 50)
    return {
        "write → visible in another process p50": f"{p50 * 1000:.1f} ms",
        "write → visible in another process p99": f"{p99 * 1000:.1f} ms (maximum 15 ms) "
        + _verdict(p99 <= 0.015),
        "produce acknowledgement p50 (baseline)": f"{ack * 1000:.1f} ms",
        "ratio visible p50 / ack p50": f"{p50 / ack:.1f}x",
    }


def _verdict(met: bool) -> str:
    return "OK" if met else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["bootstrap", "get", "latency"])
    only = parser.parse_args().only
    with benchmark_environment(migrate=False):
        from eventplatform.kafka.config import topic_name
        from eventplatform.kafka.topics import ensure_topics

        spec = _bench_namespace()
        ensure_topics()
        topic = topic_name(spec.topic)
        if only in (None, "bootstrap"):
            report(
                "KVStore bootstrap vs raw consumer (100,000 keys, 3 partitions)",
                bench_bootstrap(spec.name, topic),
            )
        if only in (None, "get"):
            if only:  # the bootstrap above filled the topic
                _fill(topic)
            report(f"KVStore.get() vs dict.get() ({LOOKUPS:,} look-ups)", bench_get(spec.name))
        if only in (None, "latency"):
            report(f"write-to-visible latency ({WRITES:,} writes)", bench_latency())
        from kvconfig.stores import shutdown

        shutdown()  # the readers stop before the broker does, instead of failing against it


if __name__ == "__main__":
    main()
