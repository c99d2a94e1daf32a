"""A consumer for runtime tests, steered by environment variables so subprocesses can be
told to be slow or to reject values."""

import os
import time

from eventplatform.kafka.consumer import BatchConsumer, Message
from eventplatform.kafka.envelope import PoisonRecord
from eventplatform.kafka.registry import register

from .models import AppliedRecord


@register
class RecordingConsumer(BatchConsumer):
    """Writes each record as an ``AppliedRecord`` row.

    ``TEST_CONSUMER_SLEEP``: seconds to sleep in the middle of every batch (after writing).
    ``TEST_CONSUMER_REJECT``: a value whose record raises in the handler (not poison).
    Values starting with ``poison`` fail to decode.
    """

    name = "test-recorder"
    topics = ("test.records",)
    database = "default"

    def __init__(self, *, store_offsets: bool = False, max_batch_size: int = 50):
        self.store_offsets_in_database = store_offsets
        self.max_batch_size = max_batch_size
        self.sleep = float(os.environ.get("TEST_CONSUMER_SLEEP", "0"))
        self.reject = os.environ.get("TEST_CONSUMER_REJECT", "")

    def decode(self, record) -> str:
        value = record.value.decode()
        if value.startswith("poison"):
            raise PoisonRecord(f"cannot decode {value!r}")
        return value

    def handle_batch(self, messages: list[Message]) -> None:
        # Tests watch for this line to know a batch is under way.
        print(f"batch started size={len(messages)}", flush=True)
        if self.reject and any(m.value == self.reject for m in messages):
            raise ValueError(f"handler rejects {self.reject!r}")
        AppliedRecord.objects.bulk_create(
            AppliedRecord(
                topic=m.record.topic,
                partition=m.record.partition,
                offset=m.record.offset,
                value=m.value,
            )
            for m in messages
        )
        if self.sleep:
            time.sleep(self.sleep)
