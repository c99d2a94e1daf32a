"""The one "read to the end" rule: when a reader has everything that was in a log.

The end offsets are taken once, when reading starts, and the reader has caught up when
every partition's position has reached them. Records written meanwhile do not move the
goal, so a reader becomes ready under a steady stream of writes. Consumers read with
``isolation_level=read_committed``, whose end offset is the last stable offset: a
transaction still open is not waited for.

The embedded broker reports a short end offset after a produce batch of several records:
one past the batch's first record, not its last. Its fetch responses carry the true high
watermark. With ``KAFKA_SHORT_HIGH_WATERMARK`` on (set only for that broker) reaching the
goal is confirmed in one of three ways:

- the positions stand at the high watermark of the last fetch, and that is at least the
  goal. A high watermark at or past the goal was given once the goal's last batch was
  written whole, so it covers that batch. This is how a bootstrap ends, without waiting;
- a poll that brought nothing for these partitions while they stand at a freshly read end
  (the fallback when the first way does not apply: say an open transaction holds a
  ``read_committed`` reader below the high watermark);
- reading up to a fresh goal read after an earlier one was reached, once the log has grown
  past it (later writes correct the earlier short answer). Under a steady stream of writes
  the positions may never meet the latest high watermark and no poll comes back empty:
  this way still ends the catch-up.
"""

import time
from collections.abc import Iterable

from django.conf import settings
from kafka import KafkaConsumer, TopicPartition


class EndOfLog:
    """The goal of one catch-up over ``partitions`` of ``consumer``'s assignment."""

    def __init__(self, consumer: KafkaConsumer, partitions: Iterable[TopicPartition]):
        self._consumer = consumer
        self.partitions = list(partitions)
        self.goal = consumer.end_offsets(self.partitions)
        self._confirmed = not settings.KAFKA_SHORT_HIGH_WATERMARK

    def _at(self, goal: dict[TopicPartition, int]) -> bool:
        return all(self._consumer.position(tp) >= goal[tp] for tp in self.partitions)

    def _at_fetched_high_watermark(self) -> bool:
        for tp in self.partitions:
            high = self._consumer.highwater(tp)
            if high is None or high < self.goal[tp] or self._consumer.position(tp) < high:
                return False
        return True

    def reached(self, *, polled_nothing: bool) -> bool:
        """True once every position is at the goal; call after each poll."""
        if not self._at(self.goal):
            return False
        if self._confirmed or self._at_fetched_high_watermark():
            return True
        fresh = self._consumer.end_offsets(self.partitions)
        if fresh != self.goal:
            # The log grew since the goal was read: the new end covers the short one.
            self._confirmed = True
            self.goal = fresh
            return self._at(fresh)
        return polled_nothing

    def lag(self) -> int:
        """Records between the positions and the goal (0 once reached)."""
        return sum(max(0, self.goal[tp] - self._consumer.position(tp)) for tp in self.partitions)


def read_to_end(
    consumer: KafkaConsumer,
    partitions: Iterable[TopicPartition],
    *,
    timeout_s: float,
    on_records=None,
    poll_ms: int = 200,
    max_records: int = 5000,
) -> bool:
    """Poll assigned ``partitions`` until caught up; hand each batch to ``on_records``.

    Returns False if ``timeout_s`` passed first.
    """
    end = EndOfLog(consumer, partitions)
    deadline = time.monotonic() + timeout_s
    while True:
        batches = consumer.poll(timeout_ms=poll_ms, max_records=max_records)
        for tp, records in batches.items():
            if on_records is not None and records:
                on_records(tp, records)
        if end.reached(polled_nothing=not any(batches.values())):
            return True
        if time.monotonic() > deadline:
            return False
