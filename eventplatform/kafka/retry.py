"""One retry policy for the platform's loops: which errors are outages, and how long to wait.

An outage (a database, Redis or broker that cannot be reached) is waited out without
bound: retrying is the only thing that can help, and giving up would lose or park work
that is fine. Anything else is about the work itself and gets a bounded number of tries.
"""

from dataclasses import dataclass

import redis
from django.db import InterfaceError, OperationalError
from kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

_OUTAGES = (
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def is_outage(error: BaseException) -> bool:
    """True for errors that say "a dependency is down", not "this work is bad".

    Kafka errors count only when Kafka calls them retriable (unreachable brokers, timeouts,
    leader changes): an authorization failure or a record too large fails the same way
    forever.
    """
    if isinstance(error, _OUTAGES):
        return True
    return isinstance(error, KafkaError) and bool(getattr(error, "retriable", False))


#: What a broker says about one record that it will say again every time: the record (not
#: the broker, the network or the client's state) is what has to change.
_RECORD_REFUSALS = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidRecordError,
    CorruptRecordError,
    InvalidTopicError,
)


def is_refused_record(error: BaseException) -> bool:
    """True when the broker refused a record for good because of the record itself."""
    return isinstance(error, _RECORD_REFUSALS)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff, capped; ``max_attempts`` bounds retries of non-outage errors."""

    max_attempts: int = 3
    initial_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        return min(self.initial_delay * (2**attempt), self.max_delay)

    def gives_up(self, attempt: int, error: BaseException) -> bool:
        """Whether ``error`` on try ``attempt`` (from 0) should stop retrying."""
        return not is_outage(error) and attempt >= self.max_attempts
