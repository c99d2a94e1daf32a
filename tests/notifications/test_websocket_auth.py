"""Only the user a channel was issued to may listen to it."""

import time
from unittest import mock

import pytest
from asgiref.sync import async_to_sync

from eventplatform.notifications.tokens import issue_channel

from .client import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def connect(path: str, session: str | None):
    async def attempt():
        ws = communicator(path, session=session)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def test_own_channel_is_accepted(make_user):
    alice = make_user("alice")
    token = issue_channel(user_id=alice.pk)
    assert connect(f"/ws/notifications/{token}/", session_cookie(alice)) == (True, None)


def test_another_users_channel_is_refused(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    token = issue_channel(user_id=bob.pk)
    assert connect(f"/ws/notifications/{token}/", session_cookie(alice)) == (False, 4403)


def test_forged_channel_is_refused(make_user):
    alice = make_user("alice")
    token = issue_channel(user_id=alice.pk)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert connect(f"/ws/notifications/{forged}/", session_cookie(alice)) == (False, 4403)
    assert connect("/ws/notifications/made-up/", session_cookie(alice)) == (False, 4403)


def test_expired_channel_is_refused(make_user, settings):
    alice = make_user("alice")
    settings.NOTIFICATIONS_CHANNEL_MAX_AGE = 60
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 120):
        old = issue_channel(user_id=alice.pk)
    assert connect(f"/ws/notifications/{old}/", session_cookie(alice)) == (False, 4403)


def test_anonymous_user_is_refused(make_user):
    alice = make_user("alice")
    token = issue_channel(user_id=alice.pk)
    assert connect(f"/ws/notifications/{token}/", None) == (False, 4403)
