"""notify() → Kafka → relay_notifications → websocket, with sequence numbers and replay."""

import time
import uuid
from collections.abc import Callable

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.envelope import Event
from eventplatform.kafka.producer import send, send_and_wait
from eventplatform.notifications import history
from eventplatform.notifications.services import notify
from eventplatform.notifications.tokens import issue_channel
from tests.helpers import wait_until

from .client import communicator, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def relay(kafka, spawn_manage):
    return spawn_manage("relay_notifications")


def stored(channel: str) -> list[int]:
    return [entry.seq for entry in history.replay(channel=channel, after=0)]


def epoch_of(channel: str) -> str | None:
    return history.read(channel=channel, after=0)[0]


def receive_all(path: str, session: str, count: int, *, timeout: float = 20) -> list[dict]:
    """Connect, receive ``count`` frames, check nothing else arrives, disconnect."""

    async def run():
        ws = communicator(path, session=session)
        connected, _ = await ws.connect()
        assert connected
        frames = [await ws.receive_json_from(timeout=timeout) for _ in range(count)]
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return frames

    return async_to_sync(run)()


def test_reconnect_with_last_seq_receives_exactly_the_missed_messages(relay, make_user):
    alice = make_user("alice")
    session = session_cookie(alice)
    channel = issue_channel(user_id=alice.pk)
    path = f"/ws/notifications/{channel}/"

    for n in range(1, 4):
        notify(channel, {"n": n}).get(timeout=10)
    wait_until(lambda: len(stored(channel)) == 3, timeout=30, message="relay never numbered 3")
    first = receive_all(path, session, 3)
    epoch = epoch_of(channel)
    assert first == [{"seq": n, "epoch": epoch, "message": {"n": n}} for n in (1, 2, 3)]

    # Offline: three more messages arrive while no socket listens.
    for n in range(4, 7):
        notify(channel, {"n": n}).get(timeout=10)
    wait_until(lambda: len(stored(channel)) == 6, timeout=10)

    async def reconnect():
        ws = communicator(f"{path}?last_seq=3&epoch={epoch}", session=session)
        assert (await ws.connect())[0]
        missed = [await ws.receive_json_from(timeout=5) for _ in range(3)]
        assert await ws.receive_nothing(timeout=0.3)
        await notify_async(channel, {"n": 7})
        live = await ws.receive_json_from(timeout=10)
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return missed, live

    missed, live = async_to_sync(reconnect)()
    assert missed == [{"seq": n, "epoch": epoch, "message": {"n": n}} for n in (4, 5, 6)]
    assert live == {"seq": 7, "epoch": epoch, "message": {"n": 7}}


async def notify_async(channel: str, message: dict) -> None:
    await sync_to_async(lambda: notify(channel, message).get(timeout=10))()


def test_redelivered_record_keeps_its_sequence_and_reaches_the_socket_once(relay, make_user):
    alice = make_user("alice")
    channel = issue_channel(user_id=alice.pk)
    event = Event(type="notification", data={"channel": channel, "message": {"n": 1}})
    # The same envelope twice, as after a relay crash between Redis and the commit.
    for _ in range(2):
        send_and_wait(topic_name("notifications"), key=channel, value=event.encode())
    notify(channel, {"n": 2}).get(timeout=10)
    wait_until(lambda: len(stored(channel)) == 2, timeout=30, message="relay never numbered")
    frames = receive_all(f"/ws/notifications/{channel}/", session_cookie(alice), 2)
    epoch = epoch_of(channel)
    assert frames == [
        {"seq": 1, "epoch": epoch, "message": {"n": 1}},
        {"seq": 2, "epoch": epoch, "message": {"n": 2}},
    ]


def notification(channel: str, n: int) -> bytes:
    return Event(type="notification", data={"channel": channel, "message": {"n": n}}).encode()


def frames_after_a_busy_spell(
    channel: str, session: str, relay_them: Callable[[], None], *, stored_count: int, quiet_s: float
) -> list[dict]:
    """Connect a socket, hold its process (this event loop) busy while ``relay_them`` puts
    notifications on the topic and the relay numbers ``stored_count`` of them, then return
    every frame the socket receives until ``quiet_s`` pass without one."""

    async def run():
        ws = communicator(f"/ws/notifications/{channel}/", session=session)
        assert (await ws.connect())[0]
        relay_them()
        wait_until(lambda: len(stored(channel)) == stored_count, timeout=30, message="not numbered")
        time.sleep(0.5)  # the relay numbers a batch before it passes the batch on
        frames = []
        while not await ws.receive_nothing(timeout=quiet_s):
            frames.append(await ws.receive_json_from())
        await ws.disconnect()
        return frames

    return async_to_sync(run)()


def test_a_burst_reaches_a_busy_socket_whole(relay, make_user):
    """The channel layer keeps at most 100 messages per socket and drops the rest without a
    word; a burst relayed while the socket's process is busy must not lose its tail, after
    which nothing would arrive to reveal the gap."""
    alice = make_user("alice")
    channel = issue_channel(user_id=alice.pk)
    burst = 400

    def send_a_burst():
        # Sent as one burst, as an import's progress can be.
        for n in range(1, burst + 1):
            send(topic_name("notifications"), key=channel, value=notification(channel, n))

    frames = frames_after_a_busy_spell(
        channel, session_cookie(alice), send_a_burst, stored_count=burst, quiet_s=3
    )
    assert [frame["message"]["n"] for frame in frames] == list(range(1, burst + 1))
    assert [frame["seq"] for frame in frames] == list(range(1, burst + 1))


def test_a_socket_that_lost_the_last_messages_is_caught_up_without_a_new_one(relay, make_user):
    """More batches than the channel layer keeps for a socket, relayed while its process is
    busy: the last ones are dropped, and no later message comes to reveal the gap. The
    relay's periodic word on each channel's last message does."""
    alice = make_user("alice")
    channel = issue_channel(user_id=alice.pk)
    burst = 150
    # The relay is running (and not about to take a backlog in one batch) once it has
    # numbered a first message.
    notify(channel, {"n": 1}).get(timeout=10)
    wait_until(lambda: len(stored(channel)) == 1, timeout=30, message="the relay never started")

    def send_one_batch_each():
        # Spaced out, so the relay takes each in a batch of its own: 149 channel-layer
        # messages, over the 100 the socket's inbox keeps.
        for n in range(2, burst + 1):
            send_and_wait(topic_name("notifications"), key=channel, value=notification(channel, n))
            time.sleep(0.03)

    frames = frames_after_a_busy_spell(
        channel, session_cookie(alice), send_one_batch_each, stored_count=burst, quiet_s=5
    )
    assert [frame["seq"] for frame in frames] == list(range(1, burst + 1))


def test_history_is_bounded_and_expires(settings):
    settings.NOTIFICATIONS_HISTORY_LENGTH = 5
    settings.NOTIFICATIONS_HISTORY_TTL = 30
    channel = f"bounded-{uuid.uuid4()}"
    for n in range(1, 9):
        entry, new = history.record(channel=channel, message_id=f"m{n}", message={"n": n})
        assert (entry.seq, new) == (n, True)
    assert [e.message["n"] for e in history.replay(channel=channel, after=0)] == [4, 5, 6, 7, 8]
    assert [e.seq for e in history.replay(channel=channel, after=6)] == [7, 8]
    again, new = history.record(channel=channel, message_id="m8", message={"n": 8})
    assert (again.seq, new) == (8, False)
    client = history._client()
    for key in history._keys(channel):
        assert 0 < client.ttl(key) <= 30


def test_an_idle_socket_stays_open_and_still_receives(relay, make_user):
    """Quiet stretches are normal (a big file being split): the socket must survive them."""
    alice = make_user("alice")
    channel = issue_channel(user_id=alice.pk)
    session = session_cookie(alice)

    async def idle_then_receive():
        ws = communicator(f"/ws/notifications/{channel}/", session=session)
        assert (await ws.connect())[0]
        # Longer than the channel layer's 5 s blocking read: the receive loop must survive it.
        assert await ws.receive_nothing(timeout=6.5, interval=0.5)
        await notify_async(channel, {"after": "silence"})
        frame = await ws.receive_json_from(timeout=20)
        await ws.disconnect()
        return frame

    frame = async_to_sync(idle_then_receive)()
    assert frame == {"seq": 1, "epoch": epoch_of(channel), "message": {"after": "silence"}}
