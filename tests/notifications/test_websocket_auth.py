"""Only the user a channel was issued to may listen to it."""

import time
from io import StringIO
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import Client

from eventplatform.notifications.tokens import issue_channel

from .client import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def connect(path: str, session: str | None, bearer: str | None = None):
    async def attempt():
        ws = communicator(path, session=session, bearer=bearer)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    return async_to_sync(attempt)()


def assert_no_error_logged(caplog) -> None:
    """Each error is named with its logger, so one from elsewhere in the process (a client
    thread left by an earlier test) says where it came from."""
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


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


def test_an_api_client_follows_its_channel_with_its_bearer_token(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    token = _api_token(alice)
    channel = Client(headers={"Authorization": f"Bearer {token}"}).post("/api/contacts/channels")
    assert channel.status_code == 201
    path = f"/ws/notifications/{channel.json()['channel']}/"
    assert connect(path, None, bearer=token) == (True, None)
    assert connect(path, None, bearer=_api_token(alice, "--read-only")) == (True, None)
    assert connect(path, None, bearer=_api_token(bob)) == (False, 4403)
    assert connect(path, None, bearer="not-a-token") == (False, 4403)
    # An unknown token leaves the session's user, as the HTTP API tries its next method.
    assert connect(path, session_cookie(alice), bearer="not-a-token") == (True, None)


def _api_token(user, *options: str) -> str:
    out = StringIO()
    call_command("create_api_token", user.username, *options, stdout=out)
    return out.getvalue().strip().split()[-1]


def test_anonymous_user_is_refused(make_user):
    alice = make_user("alice")
    token = issue_channel(user_id=alice.pk)
    assert connect(f"/ws/notifications/{token}/", None) == (False, 4403)


def test_an_unknown_path_is_closed_with_4404_and_no_error_logged(make_user, caplog):
    alice = make_user("alice")
    with caplog.at_level("INFO"):
        assert connect("/ws/nowhere/", session_cookie(alice)) == (False, 4404)
        assert connect("/ws/notifications/", None) == (False, 4404)
    assert_no_error_logged(caplog)


@pytest.mark.parametrize(
    ("frame", "code"),
    [({"bytes_data": b"\x00\x01binary"}, 1003), ({"text_data": "{not json"}, 1007)],
)
def test_a_binary_or_non_json_frame_is_closed_cleanly(make_user, caplog, frame, code):
    alice = make_user("alice")
    token, session = issue_channel(user_id=alice.pk), session_cookie(alice)

    async def send_frame():
        ws = communicator(f"/ws/notifications/{token}/", session=session)
        connected, _ = await ws.connect()
        assert connected
        await ws.send_to(**frame)
        closed = await ws.receive_output(timeout=5)
        await ws.wait()
        return closed

    with caplog.at_level("INFO"):
        closed = async_to_sync(send_frame)()
    assert closed == {"type": "websocket.close", "code": code, "reason": None} or closed == {
        "type": "websocket.close",
        "code": code,
    }
    assert_no_error_logged(caplog)
