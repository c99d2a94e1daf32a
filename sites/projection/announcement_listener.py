"""A web process's subscription to the projector's announcements, in one daemon thread.

The thread waits for the socket without holding the cache's lock, then reads and applies
everything that arrived while holding it. A request thread, holding the same lock, asks
:meth:`AnnouncementListener.up_to_date`: subscribed, and no byte waiting on the socket.
So once Redis has delivered an announcement (it does so before it answers the projector's
PUBLISH), no request serves what it names, however late this thread gets the CPU.
"""

import logging
import select
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .announcements import Announcement, decode

logger = logging.getLogger(__name__)

#: An idle subscription pings this often, and one silent for twice as long is taken for
#: dead: a peer that vanished without closing the connection shows nothing on the socket.
PING_SECONDS = 5.0
RECONNECT_SECONDS = 1.0


class AnnouncementListener:
    """Subscribes to ``channel`` on ``url`` and calls ``on_announcement`` for each message,
    and ``on_lost`` when the subscription ends (announcements may then have been missed),
    both with ``lock`` held.

    ``on_subscribed`` is called without the lock once each subscription is up, and again
    every ``PING_SECONDS`` for as long as it returns false (it may wait on I/O).
    """

    def __init__(
        self,
        *,
        url: str,
        channel: str,
        lock: threading.Lock,
        on_announcement: Callable[[Announcement], None],
        on_lost: Callable[[], None],
        on_subscribed: Callable[[], bool],
    ):
        self.channel = channel
        self._lock = lock
        self._on_announcement = on_announcement
        self._on_lost = on_lost
        self._on_subscribed = on_subscribed
        # RESP2: its replies in subscribed mode are plain arrays; redis-py's RESP3 parser
        # hands push messages to a callback while it waits for some other reply.
        self._pool = redis.ConnectionPool.from_url(
            url,
            protocol=2,
            socket_timeout=PING_SECONDS,
            socket_connect_timeout=PING_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        #: Polls the subscribed socket for requests (a poll object is not shared between
        #: threads); ``None`` while not subscribed.
        self._request_poll: select.poll | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"announcements {channel}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (within ``PING_SECONDS``); it no longer calls back."""
        with self._lock:
            self._stopped.set()

    def up_to_date(self) -> bool:
        """Whether every announcement Redis delivered so far has been applied: subscribed,
        with nothing unread on the socket. Call with the lock held."""
        return self._request_poll is not None and not self._request_poll.poll(0)

    def _run(self) -> None:
        failing = False
        while not self._stopped.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError, ValueError) as error:
                if not failing:
                    logger.warning(
                        "read API announcements lost (%s): documents come from the replica "
                        "until the subscription is back",
                        error,
                    )
                failing = True
            else:
                failing = False
            self._stopped.wait(RECONNECT_SECONDS)
        self._pool.disconnect()

    def _listen(self) -> None:
        connection = self._pool.make_connection()
        try:
            connection.connect()
            connection.send_command("SUBSCRIBE", self.channel)
            # redis-py has no public way to wait for a connection's socket without reading
            # from it, and reading must happen under the lock.
            waiting = select.poll()
            waiting.register(connection._sock, select.POLLIN)
            heard, newly_subscribed = time.monotonic(), False
            while not self._stopped.is_set():
                ready = waiting.poll(PING_SECONDS * 1000)
                with self._lock:
                    if self._stopped.is_set():
                        return
                    if ready:
                        while connection.can_read(0):
                            if self._receive(connection, connection.read_response()):
                                newly_subscribed = True
                            heard = time.monotonic()
                    elif time.monotonic() - heard > 2 * PING_SECONDS:
                        raise redis.ConnectionError("Redis stopped answering pings")
                    else:
                        connection.send_command("PING")
                if newly_subscribed:
                    newly_subscribed = not self._on_subscribed()
        finally:
            with self._lock:
                if self._request_poll is not None:
                    self._request_poll = None
                    if not self._stopped.is_set():
                        self._on_lost()
            connection.disconnect()

    def _receive(self, connection, reply: list) -> bool:
        """Apply one reply; true if it says the subscription is now up."""
        kind = reply[0]
        if kind == b"message":
            self._on_announcement(decode(reply[2]))
        elif kind == b"subscribe":
            self._request_poll = select.poll()
            self._request_poll.register(connection._sock, select.POLLIN)
            return True
        return False
