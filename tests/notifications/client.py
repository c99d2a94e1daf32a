"""Websocket test clients: a logged-in communicator against the real ASGI application."""

from channels.testing import WebsocketCommunicator
from django.test import Client

from eventplatform.asgi import application


def session_cookie(user) -> str:
    """A session id for ``user``, as the browser would send it."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(
    path: str, *, session: str | None = None, bearer: str | None = None
) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    if bearer:
        headers.append((b"authorization", f"Bearer {bearer}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)
