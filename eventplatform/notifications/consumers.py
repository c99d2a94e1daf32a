"""``WS /ws/notifications/{channel}/``: replay what the browser missed, then the live stream.

The socket joins the channel's group *before* reading the history, so nothing falls between
the replay and the live stream; anything the group delivers that the replay already sent
(sequence ≤ the last one sent) is dropped, and a jump in sequence numbers (a message the
channel layer dropped under load) is filled from the history. The browser passes
``?last_seq=N`` when it reconnects and receives exactly the messages after ``N``.

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


def _last_seq(query_string: bytes) -> int:
    values = parse_qs(query_string.decode("latin1")).get("last_seq", ["0"])
    try:
        return max(0, int(values[-1]))
    except ValueError:
        return 0


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

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
        self.last_seq = _last_seq(self.scope.get("query_string", b""))
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

    async def notification_message(self, event):
        """A live message from the relay (group message type ``notification.message``)."""
        seq = event["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            await self._replay(until=seq - 1)
        await self._send(seq, event["message"])

    async def _replay(self, *, until: int | None) -> None:
        entries = await sync_to_async(history.replay)(
            channel=self.channel, after=self.last_seq, until=until
        )
        if entries and entries[0].seq > self.last_seq + 1 and self.last_seq:
            # Older than the bounded history: say so rather than pretend nothing was missed.
            await self.send_json({"gap": {"after": self.last_seq, "next": entries[0].seq}})
        for entry in entries:
            await self._send(entry.seq, entry.message)

    async def _send(self, seq: int, message: dict) -> None:
        await self.send_json({"seq": seq, "message": message})
        self.last_seq = seq
