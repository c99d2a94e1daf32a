"""Websocket test clients: a logged-in communicator against the real ASGI application."""

from channels.testing import WebsocketCommunicator
from django.test import Client

from eventplatform.asgi import application


def session_cookie(user) -> str:
    """A session id for ``user``, as the browser would send it."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(path: str, *, session: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def channel_layers_without_read_timeout(settings) -> None:
    """Work around redis-py 8's default 5 s socket timeout, equal to channels-redis's 5 s
    BZPOPMIN: an idle socket's receive loop dies with ``TimeoutError`` after 5 s. The fix
    belongs in ``settings.CHANNEL_LAYERS`` (reported to the lead); tests apply it here."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": settings.REDIS_URL, "socket_timeout": 30}],
                "prefix": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            },
        }
    }
