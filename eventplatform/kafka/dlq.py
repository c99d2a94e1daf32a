"""Dead-letter records: the original key and value, with headers saying why and whence."""

from datetime import UTC, datetime

from django.conf import settings
from kafka.consumer.fetcher import ConsumerRecord

from .config import dlq_name
from .producer import send


def dead_letter(record: ConsumerRecord, *, error: str, consumer: str):
    """Send ``record`` to ``<topic>.dlq``; returns the future, which the caller must await.

    The original headers are kept, and ``dlq.*`` headers name the error and the source
    topic, partition and offset so the record can be inspected and replayed. A value too
    large to fit in a record of its own (often the very reason it failed) travels cut to
    ``KAFKA_DLQ_MAX_VALUE_BYTES`` with ``dlq.value_truncated`` giving its full size; the
    whole value stays at the source offset for as long as that topic retains it.
    """
    headers = list(record.headers or [])
    value = record.value
    limit = settings.KAFKA_DLQ_MAX_VALUE_BYTES
    if value is not None and len(value) > limit:
        headers.append(("dlq.value_truncated", str(len(value)).encode()))
        value = value[:limit]
    headers += [
        ("dlq.error", error[:2000].encode()),
        ("dlq.source.topic", record.topic.encode()),
        ("dlq.source.partition", str(record.partition).encode()),
        ("dlq.source.offset", str(record.offset).encode()),
        ("dlq.consumer", consumer.encode()),
        ("dlq.failed_at", datetime.now(UTC).isoformat().encode()),
    ]
    return send(dlq_name(record.topic), key=record.key, value=value, headers=headers)
