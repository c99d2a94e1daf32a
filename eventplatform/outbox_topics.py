"""Which topics an outbox relay holds rows back for: those the broker does not have.

A row for a missing topic (say, ``create_topics`` was not run after a deploy) must not hold
back the rows of every other topic, and must not be lost or set aside either: it waits,
with every later row of its topic, until the topic exists.
"""

import logging
import time

from kafka.errors import KafkaError, KafkaTimeoutError

from .kafka.config import topic_name
from .kafka.topics import absent_topics

logger = logging.getLogger("eventplatform.outbox")


class HeldTopics:
    """The logical topics whose rows wait (``held``), and how they come and go."""

    def __init__(self, *, recheck_seconds: float):
        self.held: set[str] = set()
        self.recheck_seconds = recheck_seconds
        self._checked_at = 0.0
        #: Physical topics the broker was seen to have.
        self._present: set[str] = set()

    def hold_those_not_seen_yet(self, topics: set[str]) -> None:
        """Ask the broker about the topics this relay has not sent to yet, and hold those
        it does not have.

        Asked before the first send, because a producer that asks for a missing topic makes
        a broker that creates topics on demand (the embedded one does, whatever the client
        asks) create it, with that broker's default shape rather than the declared one.
        """
        unseen = {
            topic_name(topic): topic
            for topic in topics - self.held
            if topic_name(topic) not in self._present
        }
        if not unseen:
            return
        absent = absent_topics(set(unseen))
        for name, topic in unseen.items():
            if name in absent:
                self._hold(topic)
            else:
                self._present.add(name)

    def hold_if_gone(self, topic: str, error: KafkaError) -> bool:
        """Hold ``topic`` if ``error`` is the producer giving up on a topic the broker no
        longer has (rather than on a broker that is away, which is waited out)."""
        if not isinstance(error, KafkaTimeoutError):
            return False
        if not absent_topics({topic_name(topic)}):
            return False
        self._present.discard(topic_name(topic))
        self._hold(topic)
        return True

    def release_those_that_exist(self) -> None:
        """Every ``recheck_seconds``, let go of the held topics that now exist."""
        if not self.held or time.monotonic() - self._checked_at < self.recheck_seconds:
            return
        self._checked_at = time.monotonic()
        physical = {topic_name(topic): topic for topic in self.held}
        try:
            still_absent = absent_topics(set(physical))
        except KafkaError:
            return  # the broker is away: the rows of the other topics find that out too
        for name, topic in physical.items():
            if name not in still_absent:
                self.held.discard(topic)
                self._present.add(name)
                logger.info("outbox topic exists again, its rows go on", extra={"topic": name})

    def _hold(self, topic: str) -> None:
        self.held.add(topic)
        self._checked_at = time.monotonic()
        logger.error(
            "outbox rows held back: the broker has no such topic (create it to send them)",
            extra={"topic": topic_name(topic)},
        )
