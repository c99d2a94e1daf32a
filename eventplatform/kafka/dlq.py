"""Dead-letter records: the original key and value, with headers saying why and whence."""

from datetime import UTC, datetime

from kafka.consumer.fetcher import ConsumerRecord

from .config import dlq_name
from .producer import send


def dead_letter(record: ConsumerRecord, *, error: str, consumer: str):
    """Send ``record`` to ``<topic>.dlq``; returns the future, which the caller must await.

    The original headers are kept, and ``dlq.*`` headers name the error and the source
    topic, partition and offset so the record can be inspected and replayed.
    """
    headers = list(record.headers or [])
    headers += [
        ("dlq.error", error[:2000].encode()),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    return send(dlq_name(record.topic), key=record.key, value=record.value, headers=headers)
