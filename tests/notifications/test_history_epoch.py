"""Sequence numbers after Redis lost a channel's history: a new epoch, and sockets told so.

Redis here is shared with other test runs, so "losing the data" deletes this channel's keys
only, which is what a restart with an empty Redis (or the keys expiring) looks like to it.
"""

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from eventplatform.notifications import history
from eventplatform.notifications.services import notify
from eventplatform.notifications.tokens import issue_channel
from tests.helpers import wait_until

from .client import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


def lose_history(channel: str) -> None:
    history._client().delete(*history._keys(channel))


def stored(channel: str) -> list[int]:
    return [entry.seq for entry in history.replay(channel=channel, after=0)]


def test_numbering_restarts_in_a_new_epoch_when_the_history_is_lost():
    channel = "epoch-unit-test"
    lose_history(channel)
    first = [
        history.record(channel=channel, message_id=f"a{n}", message={"n": n})[0] for n in (1, 2)
    ]
    assert [e.seq for e in first] == [1, 2] and first[0].epoch == first[1].epoch
    lose_history(channel)
    after, new = history.record(channel=channel, message_id="b1", message={"n": 3})
    assert (after.seq, new) == (1, True)
    assert after.epoch != first[0].epoch
    assert history.read(channel=channel, after=0) == (after.epoch, [after])
    lose_history(channel)


@pytest.fixture
def relay(kafka, spawn_manage):
    return spawn_manage("relay_notifications")


def test_a_socket_reconnecting_after_the_loss_is_told_and_gets_the_new_epoch(relay, make_user):
    alice = make_user("alice")
    session = session_cookie(alice)
    channel = issue_channel(user_id=alice.pk)
    for n in (1, 2, 3):
        notify(channel, {"n": n}).get(timeout=10)
    wait_until(lambda: stored(channel) == [1, 2, 3], timeout=30, message="relay never numbered")
    old_epoch = history.read(channel=channel, after=0)[0]
    lose_history(channel)
    for n in (4, 5):
        notify(channel, {"n": n}).get(timeout=10)
    wait_until(lambda: stored(channel) == [1, 2], timeout=30, message="relay never renumbered")
    new_epoch = history.read(channel=channel, after=0)[0]
    assert new_epoch != old_epoch

    async def reconnect():
        ws = communicator(
            f"/ws/notifications/{channel}/?last_seq=3&epoch={old_epoch}", session=session
        )
        assert (await ws.connect())[0]
        frames = [await ws.receive_json_from(timeout=10) for _ in range(3)]
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return frames

    assert async_to_sync(reconnect)() == [
        {"gap": {"after": 3, "next": 1, "epoch": new_epoch, "history_lost": True}},
        {"seq": 1, "epoch": new_epoch, "message": {"n": 4}},
        {"seq": 2, "epoch": new_epoch, "message": {"n": 5}},
    ]


def test_an_open_socket_is_told_when_live_numbering_restarts(relay, make_user):
    alice = make_user("alice")
    channel = issue_channel(user_id=alice.pk)
    session = session_cookie(alice)

    async def scenario():
        ws = communicator(f"/ws/notifications/{channel}/", session=session)
        assert (await ws.connect())[0]
        send = sync_to_async(lambda message: notify(channel, message).get(timeout=10))
        for n in (1, 2):
            await send({"n": n})
        before = [await ws.receive_json_from(timeout=20) for _ in range(2)]
        await sync_to_async(lose_history)(channel)
        await send({"n": 3})
        after = [await ws.receive_json_from(timeout=20) for _ in range(2)]
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return before, after

    before, after = async_to_sync(scenario)()
    assert [f["seq"] for f in before] == [1, 2]
    new_epoch = after[1]["epoch"]
    assert new_epoch != before[0]["epoch"]
    assert after == [
        {"gap": {"after": 2, "next": 1, "epoch": new_epoch, "history_lost": True}},
        {"seq": 1, "epoch": new_epoch, "message": {"n": 3}},
    ]
