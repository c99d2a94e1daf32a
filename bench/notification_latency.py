"""Notification latency: ``notify()`` produce → websocket receive, p50/p99 over 1,000
messages, against the channel layer alone (group_send → receive) in the same run.

    REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m bench.notification_latency
"""

import asyncio
import os
import time

from bench.harness import benchmark_environment, percentile, report
from bench.pipeline import running

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1000"))
TARGET_P99_MS = 25


async def through_platform(application, path: str, session: str) -> list[float]:
    from channels.testing import WebsocketCommunicator

    from eventplatform.kafka.producer import get_producer
    from eventplatform.notifications.services import notify

    channel = path.split("/")[3]
    ws = WebsocketCommunicator(
        application,
        path,
        headers=[(b"origin", b"http://testserver"), (b"cookie", f"sessionid={session}".encode())],
    )
    assert (await ws.connect())[0]
    samples = []
    for i in range(MESSAGES):
        started = time.perf_counter()
        notify(channel, {"i": i})
        get_producer().flush()
        frame = await ws.receive_json_from(timeout=30)
        samples.append(time.perf_counter() - started)
        assert frame["message"] == {"i": i}, frame
    await ws.disconnect()
    return samples


async def channel_layer_only() -> list[float]:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    name = await layer.new_channel()
    await layer.group_add("bench.latency", name)
    samples = []
    for i in range(MESSAGES):
        started = time.perf_counter()
        await layer.group_send("bench.latency", {"type": "x", "i": i})
        await layer.receive(name)
        samples.append(time.perf_counter() - started)
    await layer.group_discard("bench.latency", name)
    return samples


def main() -> None:
    with benchmark_environment():
        from django.contrib.auth import get_user_model
        from django.test import Client

        from eventplatform.asgi import application
        from eventplatform.notifications.tokens import issue_channel

        user = get_user_model().objects.create_user(f"bench-latency-{time.time_ns()}")
        client = Client()
        client.force_login(user)
        path = f"/ws/notifications/{issue_channel(user_id=user.pk)}/"
        baseline = asyncio.run(channel_layer_only())
        with running(["relay_notifications"]):
            samples = asyncio.run(
                through_platform(application, path, client.cookies["sessionid"].value)
            )
        rows = {}
        for label, values in (("channel layer only", baseline), ("notify → websocket", samples)):
            rows[label] = (
                f"p50 {percentile(values, 50) * 1000:.1f} ms   "
                f"p99 {percentile(values, 99) * 1000:.1f} ms"
            )
        rows["ratio p50 (platform / layer)"] = (
            f"{percentile(samples, 50) / percentile(baseline, 50):.1f}x"
        )
        rows["target"] = f"notify → websocket p99 ≤ {TARGET_P99_MS} ms"
        report(f"notification latency over {MESSAGES:,} messages", rows)


if __name__ == "__main__":
    main()
