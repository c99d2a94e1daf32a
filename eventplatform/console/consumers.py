"""``WS /ws/console/``: the console's snapshots, pushed to staff browsers as they are taken.

A websocket on the Channels stack the platform already runs (daphne, the session auth
middleware), rather than polling or server-sent events: the page gets each snapshot the
moment it exists with one connection and no request per second, and the socket carries
the session, so staff-only is the same check as the admin's. Non-staff sockets are closed
with 4403 before anything is sent.
"""

import asyncio

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from eventplatform.notifications.consumers import REFUSED

from .live import sampler

#: How often a socket looks for a newer snapshot than the one it sent.
CHECK_SECONDS = 0.2


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    _pushing: asyncio.Task | None = None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_active or not user.is_staff:
            await self.close(code=REFUSED)
            return
        await self.accept()
        self._pushing = asyncio.create_task(self._push())

    async def disconnect(self, code):
        if self._pushing is not None:
            self._pushing.cancel()

    async def receive_json(self, content, **kwargs):
        # The page says nothing but "refresh" (after an action); anything else is ignored.
        if content == {"type": "refresh"}:
            sampler.refresh_soon()

    async def _push(self) -> None:
        sent = 0
        while True:
            sampler.watch()
            sequence, snapshot = sampler.latest()
            if snapshot is not None and sequence != sent:
                await self.send_json({"type": "snapshot", "snapshot": snapshot})
                sent = sequence
            await asyncio.sleep(CHECK_SECONDS)
