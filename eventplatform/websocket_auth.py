"""Websockets for API clients: ``Authorization: Bearer <token>``, as on every ``/api/`` call.

A browser cannot set that header on a websocket and sends its session cookie instead,
which Channels' ``AuthMiddlewareStack`` (around this) reads. A valid token names the user;
an unknown one leaves the session's user (or none) in place, as the HTTP API tries its
next method.
"""

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from .auth import user_for_token

_BEARER = "bearer "


class BearerTokenMiddleware(BaseMiddleware):
    async def __call__(self, scope, receive, send):
        token = _bearer_token(scope)
        if token:
            user = await database_sync_to_async(user_for_token)(token)
            if user is not None:
                scope = {**scope, "user": user}
        return await super().__call__(scope, receive, send)


def _bearer_token(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin1")
            if text[: len(_BEARER)].lower() == _BEARER:
                return text[len(_BEARER) :].strip()
    return None
