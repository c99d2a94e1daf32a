"""The operations console: staff only, and live in a real browser — a poison record shows
up without reload, its replay is delivered once, and lag rises and falls in a backfill."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

from eventplatform.kafka.config import topic_name
from eventplatform.kafka.producer import send, wait_all
from eventplatform.models import DeadLetterAction
from tests.helpers import RunningConsumer, chromium, serve_daphne, wait_until
from tests.notifications.client import communicator, session_cookie
from tests.runtime_app.consumers import RecordingConsumer
from tests.runtime_app.models import AppliedRecord

from .kafka_helpers import produce

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "test.records"
DLQ = f"{TOPIC}.dlq"
BACKFILL = 50_000


def test_console_pages_are_for_staff_only(client):
    user = get_user_model().objects.create_user("dora", password="pw-123456")
    client.force_login(user)
    page = client.get("/admin/console/")
    assert page.status_code == 302
    assert page.url.startswith("/admin/login/")
    action = client.post(f"/admin/console/dlq/{DLQ}/replay/", {"all": True})
    assert action.status_code == 302
    assert not DeadLetterAction.objects.exists()


def test_replaying_or_discarding_needs_the_permission_to_write_the_audit(client, kafka):
    user = get_user_model().objects.create_user("stan", password="pw-123456", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/console/").status_code == 200  # seeing is for any staff user
    for action in ("replay", "discard"):
        answer = client.post(
            f"/admin/console/dlq/{DLQ}/{action}/", '{"all": true}', content_type="application/json"
        )
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith(
            f"{action} needs the permission 'eventplatform.add_deadletteraction'"
        )
    assert not DeadLetterAction.objects.exists()


def test_console_socket_refuses_anyone_but_staff():
    user = get_user_model().objects.create_user("dora", password="pw-123456")

    async def attempt(session):
        ws = communicator("/ws/console/", session=session)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    assert async_to_sync(attempt)(session_cookie(user)) == (False, 4403)
    assert async_to_sync(attempt)(None) == (False, 4403)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("not json", "the body must be JSON"),
        ("[1]", 'the body must be a JSON object with "refs" or "all"'),
        ('{"refs": [1]}', '"refs" must be a list of "partition:offset" strings'),
        ("{}", 'name the records in "refs" or send "all": true, not both'),
    ],
)
def test_a_bad_action_request_gets_a_json_error(admin_client, body, detail):
    answer = admin_client.post(
        f"/admin/console/dlq/{DLQ}/replay/", body, content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"detail": detail}


def test_an_unknown_dlq_gets_a_json_error(admin_client, kafka):
    answer = admin_client.post(
        "/admin/console/dlq/no.such/discard/", '{"all": true}', content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("no DLQ named 'no.such'")


@pytest.fixture
def console_url(kafka, subprocess_env, tmp_path):
    with serve_daphne(env=subprocess_env, log_path=tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page(console_url):
    ops = get_user_model().objects.create_user("ops", password="pw-123456", is_staff=True)
    ops.user_permissions.add(Permission.objects.get(codename="add_deadletteraction"))
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{console_url}/admin/console/")  # the admin's login first
        page.fill("#id_username", "ops")
        page.fill("#id_password", "pw-123456")
        page.click("input[type=submit]")
        expect(page.locator("#console-status")).to_have_text("live", timeout=30_000)
        # Set once; a reload would lose it.
        page.evaluate("window.loadedOnce = true")
        yield page
        assert page.evaluate("window.loadedOnce") is True, "the page was reloaded"


def _query(read):
    """Run an ORM read off the test's thread: Playwright's sync API runs an event loop
    there, where Django refuses database calls."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(read).result()


def _applied(value: str) -> int:
    return _query(lambda: AppliedRecord.objects.filter(value=value).count())


def _backfill(count: int) -> None:
    target = topic_name(TOPIC)
    futures = [send(target, key=f"k{i % 97}", value=f"fill-{i}".encode()) for i in range(count)]
    wait_all(futures, timeout=120)


def test_console_shows_a_dead_letter_replays_it_once_and_follows_lag(page):
    consumer = RecordingConsumer(max_batch_size=500)
    consumer.reject = "transient-1"  # fails until "fixed" below
    with RunningConsumer(consumer, max_retries=0) as runtime:
        wait_until(lambda: runtime.assigned.is_set(), timeout=60)
        group = page.locator('[data-group="test-recorder"]')
        expect(group).to_be_visible(timeout=30_000)

        produce(TOPIC, ["ok-1", "transient-1"], key="one-partition")
        dlq = page.locator(f'[data-dlq="{DLQ}"]')
        poisoned = dlq.locator("tr[data-ref]", has_text="transient-1")
        expect(poisoned).to_have_count(1, timeout=30_000)
        expect(poisoned).to_contain_text("handler rejects 'transient-1'")
        expect(dlq.locator("h3")).to_have_text(f"{DLQ}: 1 pending, 0 handled")

        consumer.reject = ""  # the failure was transient: the consumer accepts it now
        poisoned.get_by_role("button", name="Replay").click()
        # The replay reads the DLQ, sends the record back and commits, all in that request.
        expect(page.locator("#console-message")).to_have_text(
            f"1 record(s) of {DLQ} replayed", timeout=30_000
        )
        expect(dlq.locator("h3")).to_have_text(f"{DLQ}: 0 pending, 1 handled", timeout=15_000)
        wait_until(lambda: _applied("transient-1"), interval=0.2)
        audit = _query(DeadLetterAction.objects.get)
        assert (audit.action, audit.actor) == ("replay", "ops")

        lag = group.locator(".console-lag")
        expect(lag).to_have_text("0", timeout=30_000)
        filling = threading.Thread(target=_backfill, args=(BACKFILL,))
        filling.start()
        highest, deadline = 0, time.monotonic() + 180
        while time.monotonic() < deadline:
            shown = int(lag.get_attribute("data-lag") or 0)
            highest = max(highest, shown)
            if highest > 1000 and shown == 0 and not filling.is_alive():
                break
            page.wait_for_timeout(200)
        filling.join()
        assert highest > 1000, f"the lag shown never rose above {highest}"
        expect(lag).to_have_text("0", timeout=5_000)
        expect(group.locator(".console-chart-lag figcaption")).not_to_have_text(
            "lag — last 15 min, peak 1"
        )

    assert _applied("transient-1") == 1
    filled = _query(lambda: AppliedRecord.objects.filter(value__startswith="fill-").count())
    assert filled == BACKFILL
