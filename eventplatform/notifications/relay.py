"""The ``relay_notifications`` consumer: ``notifications`` topic → history → Channels groups.

Each record is numbered and stored in the channel's Redis history first, then sent to the
channel's group; channels-redis fans it out to whichever web process holds the socket. A
record redelivered after a crash keeps its sequence number and is sent again: sockets drop
what they already have, so the browser sees it once.

A batch goes to each channel's group as one message holding all of that channel's entries.
channels-redis keeps at most 100 messages per socket and drops the rest without a word, so
a burst sent one message per entry lost its tail whenever the socket's process was busy,
and with no later message to reveal the gap the browser never learnt of it.

A socket whose process stalls for longer can still lose the last messages that way, so for
a while after a channel's last message the relay repeats, every ``periodic_seconds``, which
sequence number that was (``notification.position``); a socket behind it reads the rest
from the history.
"""

import asyncio
import time

from channels.layers import get_channel_layer

from eventplatform.kafka.consumer import BatchConsumer, Message
from eventplatform.kafka.envelope import Event, PoisonRecord

from . import history
from .services import EVENT_TYPE, TOPIC
from .tokens import group_name


class NotificationRelay(BatchConsumer):
    name = "relay_notifications"
    topics = (TOPIC,)
    interactive = True  # a person watches the progress these records carry
    #: How often the last position of each recently active channel is repeated.
    periodic_seconds = 2.0
    #: For how long after its last message a channel's position is repeated.
    position_window_seconds = 30.0
    # One event loop for the relay's life, on the thread that runs the batches: channels-redis
    # keeps its Redis connections per loop, and a fresh loop per batch (``async_to_sync``)
    # paid a new thread and a new connection for every notification.
    _loop: asyncio.AbstractEventLoop | None = None

    def __init__(self):
        #: Group → (sequence number, epoch, when) of the last message relayed to it.
        self._last_positions: dict[str, tuple[int, str, float]] = {}

    def decode(self, record) -> Event:
        event = Event.decode(record.value).require_major(1)
        if event.type != EVENT_TYPE:
            raise PoisonRecord(f"expected a {EVENT_TYPE!r} event, got {event.type!r}")
        channel, message = event.data.get("channel"), event.data.get("message")
        if not isinstance(channel, str) or not channel:
            raise PoisonRecord("notification data.channel must be a non-empty string")
        if not isinstance(message, dict):
            raise PoisonRecord("notification data.message must be a JSON object")
        return event

    def handle_batch(self, messages: list[Message]) -> None:
        entries_by_group: dict[str, list[dict]] = {}
        for item in messages:
            event: Event = item.value
            channel = event.data["channel"]
            entry, _ = history.record(
                channel=channel, message_id=str(event.id), message=event.data["message"]
            )
            entries_by_group.setdefault(group_name(channel), []).append(entry.as_dict())
        self._run(self._send_all(entries_by_group))
        now = time.monotonic()
        for group, entries in entries_by_group.items():
            self._last_positions[group] = (entries[-1]["seq"], entries[-1]["epoch"], now)

    def periodic(self) -> None:
        now = time.monotonic()
        self._last_positions = {
            group: position
            for group, position in self._last_positions.items()
            if now - position[2] < self.position_window_seconds
        }
        if self._last_positions:
            self._run(self._send_positions(self._last_positions))

    def _run(self, work) -> None:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(work)

    @staticmethod
    async def _send_all(entries_by_group: dict[str, list[dict]]) -> None:
        layer = get_channel_layer()
        for group, entries in entries_by_group.items():
            await layer.group_send(group, {"type": "notification.messages", "entries": entries})

    @staticmethod
    async def _send_positions(positions: dict[str, tuple[int, str, float]]) -> None:
        layer = get_channel_layer()
        for group, (seq, epoch, _) in positions.items():
            await layer.group_send(
                group, {"type": "notification.position", "seq": seq, "epoch": epoch}
            )
