"""Upload over HTTP, follow over the websocket: planned, every batch, completed."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from contacts.models import Contact, ImportJob
from eventplatform.notifications import history
from tests.helpers import wait_until
from tests.notifications.client import communicator, session_cookie

from .conftest import contacts_csv, post_import

pytestmark = pytest.mark.django_db(transaction=True)


async def receive_until(ws, stop, *, timeout: float = 60) -> list[dict]:
    frames = []
    while True:
        frames.append(await ws.receive_json_from(timeout=timeout))
        if stop(frames[-1]["message"]):
            return frames


def is_final(message: dict) -> bool:
    return message["type"] in {"completed", "failed"}


def test_import_streams_planned_every_batch_and_completed(pipeline, user, channel, client_for):
    client = client_for(user)
    # 1,200 rows, every 100th email invalid, then user1..user3 again with new names.
    content = contacts_csv(1200, bad_every=100) + b"".join(
        f"USER{n}@Example.com , Renamed {n},,\n".encode() for n in (1, 2, 3)
    )

    session = session_cookie(user)

    async def scenario():
        ws = communicator(f"/ws/notifications/{channel}/", session=session)
        assert (await ws.connect())[0]
        response = await sync_to_async(post_import)(client, content, channel)
        assert response.status_code == 202, response.content
        frames = await receive_until(ws, is_final)
        # The same channel reports a second, unreadable file precisely.
        empty = await sync_to_async(post_import)(client, b"", channel, "empty.csv")
        assert empty.status_code == 202
        failure = await receive_until(ws, is_final, timeout=30)
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return response.json()["job_id"], frames, failure, empty.json()["job_id"]

    job_id, frames, failure, empty_job = async_to_sync(scenario)()

    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    messages = [f["message"] for f in frames]
    assert all(m["job_id"] == job_id for m in messages)
    assert messages[0] == {
        "type": "planned",
        "job_id": job_id,
        "file": "contacts.csv",
        "total_rows": 1203,
        "total_batches": 3,
        "ignored_columns": [],
    }
    batches = [m for m in messages if m["type"] == "batch"]
    assert sorted(m["batch_no"] for m in batches) == [0, 1, 2]
    assert sum(m["rows"] for m in batches) == 1203
    failed_lines = [e["line"] for m in batches for e in m["errors"]]
    assert sorted(failed_lines) == [n + 1 for n in range(100, 1201, 100)]
    assert all(e["reason"].startswith("invalid email") for m in batches for e in m["errors"])
    completed = messages[-1]
    assert completed == {
        "type": "completed",
        "job_id": job_id,
        "total_rows": 1203,
        "imported": 1188,
        "updated": 3,
        "failed": 12,
        "ignored_columns": [],
    }
    assert sum(m["imported"] for m in batches) == 1188
    assert [m["type"] for m in messages].count("completed") == 1

    contacts = Contact.objects.filter(owner=user)
    assert contacts.count() == 1188
    assert contacts.get(email="user2@example.com").name == "Renamed 2"
    assert not contacts.filter(email__startswith="bad-").exists()

    assert [f["message"] for f in failure] == [
        {"type": "failed", "job_id": empty_job, "reason": "the file is empty", "processed_rows": 0}
    ]


def test_reconnect_mid_import_receives_exactly_the_missed_messages(
    pipeline, user, channel, client_for
):
    client = client_for(user)
    session = session_cookie(user)
    path = f"/ws/notifications/{channel}/"

    async def first_part():
        ws = communicator(path, session=session)
        assert (await ws.connect())[0]
        response = await sync_to_async(post_import)(client, contacts_csv(5000), channel)
        assert response.status_code == 202
        seen = [await ws.receive_json_from(timeout=60) for _ in range(3)]
        await ws.disconnect()
        return response.json()["job_id"], seen

    job_id, seen = async_to_sync(first_part)()
    assert seen[0]["message"]["type"] == "planned"
    # While the page is away, the import finishes: 1 planned + 10 batches + 1 completed.
    wait_until(
        lambda: ImportJob.objects.filter(id=job_id, completed_at__isnull=False).exists(),
        timeout=60,
        message="import never completed",
    )
    wait_until(lambda: len(history.replay(channel=channel, after=0)) == 12, timeout=30)
    last_seq = seen[-1]["seq"]

    async def second_part():
        ws = communicator(f"{path}?last_seq={last_seq}", session=session)
        assert (await ws.connect())[0]
        rest = await receive_until(ws, is_final, timeout=10)
        assert await ws.receive_nothing(timeout=0.3)
        await ws.disconnect()
        return rest

    rest = async_to_sync(second_part)()
    frames = seen + rest
    assert [f["seq"] for f in frames] == list(range(1, 13))
    batches = [f["message"]["batch_no"] for f in frames if f["message"]["type"] == "batch"]
    assert sorted(batches) == list(range(10))
    assert frames[-1]["message"]["imported"] == 5000
