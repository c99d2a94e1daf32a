"""The one background thread per process that feeds every KV store from its topic.

It assigns itself every partition of a store's topic (no consumer group: every process
reads everything), bootstraps from the beginning, marks the store ready once it has read
to the end, and keeps following. A topic deleted and created again (its id changes) is read
anew from its start, the store serving its values meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from eventplatform.kafka.catch_up import EndOfLog
from eventplatform.kafka.config import consumer_options, fetch_max_wait_ms
from eventplatform.kafka.topic_identity import (
    IDENTITY_CHECK_SECONDS,
    refresh_topic_metadata,
    topic_id,
)

if TYPE_CHECKING:
    from .store import KVStore

logger = logging.getLogger("kvconfig.store")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector off for one poll of a bootstrap and its apply.

    A bootstrap keeps every value it decodes, and kafka-python's records stay alive until
    applied: with the collector running, 100,000 records brought three full collections,
    each walking every object in the process (some 150,000 from start-up, plus the store
    so far), 0.5 to 0.7 s of a 2 to 3 s bootstrap. Paused a poll at a time, the collector
    catches up once per poll on the young objects only, and is never held off for longer
    than one poll. It is process-wide, so it is left as found when something else has
    turned it off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class KVReader:
    """The one thread per process that feeds every store from its topic."""

    poll_timeout_ms = 200
    #: While a store bootstraps. kafka-python (3.0) can find a fetch response unread yet
    #: report its fetcher idle, and then sleeps min(poll timeout, retry backoff = 100 ms)
    #: before reading it: a bootstrap of 100,000 records met that up to four times. And
    #: on a broker whose end offsets run short, a store at its goal that the last fetch's
    #: high watermark cannot confirm is ready only after a poll that brings nothing
    #: (:mod:`eventplatform.kafka.catch_up`); a poll returns at once while records are
    #: buffered, so that one need not last long either.
    bootstrap_poll_timeout_ms = 20
    max_records = 5000

    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[KVStore] = []
        self._by_topic: dict[str, KVStore] = {}
        self._bootstrapping: dict[KVStore, EndOfLog] = {}
        self._topic_ids: dict[str, str] = {}  # topic -> its id when assigned
        self._last_identity_check = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kv-reader", daemon=True)
        self._consumer: KafkaConsumer | None = None

    def follow(self, store: KVStore) -> None:
        """Have the reader assign the store's partitions (from the reader thread)."""
        with self._lock:
            if store._registered:
                return
            store._registered = True
            self._pending.append(store)
            if not self._thread.is_alive() and not self._stop.is_set():
                self._thread.start()

    def is_reader_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread.is_alive() and not self.is_reader_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._consumer is None:
                    self._consumer = KafkaConsumer(
                        **consumer_options(),
                        group_id=None,
                        enable_auto_commit=False,
                        auto_offset_reset="earliest",
                        fetch_max_wait_ms=fetch_max_wait_ms(interactive=True),
                        client_id=f"kv-reader-{os.getpid()}",
                    )
                self._assign_pending()
                if not self._by_topic:
                    self._stop.wait(0.05)
                    continue
                self._poll_once()
                if time.monotonic() - self._last_identity_check >= IDENTITY_CHECK_SECONDS:
                    self._check_topic_ids()
            except Exception as error:
                logger.exception("KV reader error; retrying")
                with self._lock:
                    waiting = [*self._bootstrapping, *self._pending]
                for store in waiting:
                    store._set_problem(f"{type(error).__name__}: {error}")
                self._stop.wait(1)
        if self._consumer is not None:
            self._consumer.close()

    def _assign_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        try:
            self._assign(pending)
        except BaseException:
            # The broker went away meanwhile (end offsets time out, say): every one of them
            # is tried again on the next loop, or a store would never be ready.
            topics = {store.topic for store in pending}
            for store in pending:
                self._by_topic.pop(store.topic, None)
                self._topic_ids.pop(store.topic, None)
                self._bootstrapping.pop(store, None)
            # Nor are their partitions fetched meanwhile: records would find no store.
            kept = [tp for tp in self._consumer.assignment() if tp.topic not in topics]
            self._consumer.assign(kept)
            with self._lock:
                self._pending[:0] = [store for store in pending if store not in self._pending]
            raise

    def _assign(self, pending: list[KVStore]) -> None:
        added: list[TopicPartition] = []
        for store in pending:
            partitions = self._consumer.partitions_for_topic(store.topic)
            if not partitions:
                store._set_problem(
                    f"topic {store.topic!r} does not exist (run manage.py create_topics)"
                )
                with self._lock:
                    self._pending.append(store)  # retried on the next loop
                continue
            tps = [TopicPartition(store.topic, p) for p in sorted(partitions)]
            self._by_topic[store.topic] = store
            self._topic_ids[store.topic] = topic_id(self._consumer, store.topic)
            added.append((store, tps))
        if added:
            new = [tp for _, tps in added for tp in tps]
            self._consumer.assign(list(self._consumer.assignment() | set(new)))
            self._consumer.seek_to_beginning(*new)
            for store, tps in added:
                self._bootstrapping[store] = EndOfLog(self._consumer, tps)
        elif pending:
            self._stop.wait(0.5)  # topics still missing: do not spin on metadata requests

    def _poll_once(self) -> None:
        if self._bootstrapping:
            timeout_ms, pause = self.bootstrap_poll_timeout_ms, _collector_paused()
        else:
            timeout_ms, pause = self.poll_timeout_ms, contextlib.nullcontext()
        with pause:
            touched = self._apply_poll(timeout_ms)
        for store, end in list(self._bootstrapping.items()):
            if end.reached(polled_nothing=store.topic not in touched):
                del self._bootstrapping[store]
                if store._rereading is not None:
                    store._end_reread()
                if not store.ready:
                    store._mark_ready()

    def _check_topic_ids(self) -> None:
        """Read anew each followed topic that was deleted and created again: the new log
        starts at 0, below the positions held, and not every broker says they are out of
        range; the new id gives it away."""
        self._last_identity_check = time.monotonic()
        if not self._topic_ids:
            return
        try:
            refresh_topic_metadata(self._consumer)
        except KafkaError as error:  # the broker is away: next time
            logger.info("KV topic ids not checked this time", extra={"error": repr(error)})
            return
        for topic, known in list(self._topic_ids.items()):
            current = topic_id(self._consumer, topic)
            if known and current and current != known:
                self._reread(self._by_topic[topic], current)

    def _reread(self, store: KVStore, current_id: str) -> None:
        partitions = self._consumer.partitions_for_topic(store.topic)
        if not partitions:
            return  # not known to this client yet: next time
        tps = [TopicPartition(store.topic, p) for p in sorted(partitions)]
        # The one step that asks the broker goes first: if it fails, nothing has changed
        # and the next check tries again.
        end = EndOfLog(self._consumer, tps)
        kept = {tp for tp in self._consumer.assignment() if tp.topic != store.topic}
        self._consumer.assign(list(kept | set(tps)))
        self._consumer.seek_to_beginning(*tps)
        store._begin_reread()
        self._bootstrapping[store] = end
        self._topic_ids[store.topic] = current_id
        logger.warning(
            "KV topic was deleted and created again; reading it anew",
            extra={"topic": store.topic, "topic_id": current_id},
        )

    def _apply_poll(self, timeout_ms: int) -> set[str]:
        """Poll once and apply what came; returns the topics that brought records.

        The polled records are gone when this returns, before a paused collector resumes,
        so it only walks the values the stores keep.
        """
        touched = set()
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=self.max_records)
        for tp, records in batches.items():
            if records:
                self._by_topic[tp.topic]._apply(tp.partition, records)
                touched.add(tp.topic)
        return touched
