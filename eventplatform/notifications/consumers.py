"""``WS /ws/notifications/{channel}/``: replay what the browser missed, then the live stream.

The socket joins the channel's group *before* reading the history, so nothing falls between
the replay and the live stream; anything the group delivers that the replay already sent
(sequence ≤ the last one sent) is dropped, and a jump in sequence numbers (a message the
channel layer dropped under load) is filled from the history. The browser passes
``?last_seq=N&epoch=E`` when it reconnects and receives exactly the messages after ``N``.

Frames: ``{"seq", "epoch", "message"}``; ``{"gap": {"after", "next"}}`` when messages expired
from the bounded history; ``{"gap": {"after", "next", "epoch", "history_lost": true}}`` when
the history itself was lost (a new epoch: numbering restarted at 1), followed by everything
the new epoch holds. Either gap means the browser should read the true state elsewhere.

Close codes: 4403 the channel is refused, 4404 no such websocket path, 1003 a binary frame
(the channel speaks JSON text), 1007 a text frame that is not JSON.
"""

import json
import logging
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from . import history
from .tokens import ChannelRefused, group_name, verify_channel

logger = logging.getLogger(__name__)

REFUSED = 4403
UNKNOWN_PATH = 4404
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Every websocket path no route knows: refused with ``UNKNOWN_PATH``, logged as INFO."""

    async def connect(self):
        logger.info("websocket refused: no route for %r", self.scope.get("path"))
        await self.close(code=UNKNOWN_PATH)


def _position(query_string: bytes) -> tuple[int, str | None]:
    """``(last_seq, epoch)`` from the query string; a malformed one counts as absent."""
    query = parse_qs(query_string.decode("latin1"))
    try:
        last_seq = max(0, int(query.get("last_seq", ["0"])[-1]))
    except ValueError:
        last_seq = 0
    epoch = query.get("epoch", [""])[-1] or None
    return last_seq, epoch


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    #: The epoch ``last_seq`` counts in; None until the socket has seen one.
    epoch: str | None = None

    async def connect(self):
        user = self.scope.get("user")
        user_id = user.pk if user is not None and user.is_authenticated else None
        try:
            self.channel = verify_channel(
                token=self.scope["url_route"]["kwargs"]["channel"], user_id=user_id
            )
        except ChannelRefused:
            await self.close(code=REFUSED)
            return
        self.last_seq, self.epoch = _position(self.scope.get("query_string", b""))
        self.group = group_name(self.channel)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._replay(until=None)

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The channel is one-way JSON text: a binary frame or non-JSON text closes it."""
        if text_data is None:
            await self.close(code=UNSUPPORTED_DATA)
            return
        try:
            json.loads(text_data)
        except ValueError:
            await self.close(code=INVALID_PAYLOAD)

    async def notification_messages(self, event):
        """Live messages from the relay, a batch's worth for this channel in one
        (group message type ``notification.messages``)."""
        for entry in event["entries"]:
            await self._deliver(entry)

    async def notification_message(self, event):
        """One live message (group message type ``notification.message``), as relays sent
        them before batching: kept so sockets outlast a deploy that replaces the relay."""
        await self._deliver(event)

    async def notification_position(self, event):
        """The relay's repeated word on the channel's last message (group message type
        ``notification.position``): a socket behind it lost the last messages with nothing
        after them to reveal the gap, and reads them from the history."""
        seq = event["seq"]
        if self._is_new_epoch(event.get("epoch")) or seq > self.last_seq:
            await self._replay(until=seq)

    async def _deliver(self, entry: dict) -> None:
        seq, epoch = entry["seq"], entry.get("epoch")
        if self._is_new_epoch(epoch):
            await self._replay(until=seq - 1)
        elif seq <= self.last_seq:
            return
        elif seq > self.last_seq + 1:
            await self._replay(until=seq - 1)
        await self._send(history.Entry(seq=seq, epoch=epoch, message=entry["message"]))

    def _is_new_epoch(self, epoch: str | None) -> bool:
        """The history was lost since this socket's position: its numbers mean nothing now."""
        return bool(epoch and self.epoch and self.last_seq and epoch != self.epoch)

    async def _replay(self, *, until: int | None) -> None:
        read = sync_to_async(history.read)
        epoch, entries = await read(channel=self.channel, after=self.last_seq, until=until)
        if self._is_new_epoch(epoch):
            epoch, entries = await read(channel=self.channel, after=0, until=until)
            gap = {"after": self.last_seq, "next": entries[0].seq if entries else 1}
            await self.send_json({"gap": {**gap, "epoch": epoch, "history_lost": True}})
            self.last_seq, self.epoch = 0, epoch
        elif entries and entries[0].seq > self.last_seq + 1 and self.last_seq:
            # Older than the bounded history: say so rather than pretend nothing was missed.
            await self.send_json({"gap": {"after": self.last_seq, "next": entries[0].seq}})
        for entry in entries:
            await self._send(entry)

    async def _send(self, entry: history.Entry) -> None:
        await self.send_json(entry.as_dict())
        self.last_seq, self.epoch = entry.seq, entry.epoch
