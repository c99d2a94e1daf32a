"""Websocket helpers: a logged-in communicator against the real ASGI application."""

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from eventplatform.asgi import application


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(path: str, *, session: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@pytest.fixture
def make_user(db):
    def make(name: str = "alice"):
        return get_user_model().objects.create_user(name, password="pw-123456")

    return make
