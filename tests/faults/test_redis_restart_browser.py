"""Redis restarted empty in the middle of an import, watched in a real browser.

The restart takes the channel layer's groups, the notification history and Celery's queue
with it. The page must say that live progress was interrupted and still end on the exact
totals and every row error, read from the import status API.
"""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from playwright.sync_api import expect

from tests.contacts.conftest import contacts_csv, last_good_email
from tests.contacts.held_rows import backends_waiting_on, contact_held_uncommitted
from tests.helpers import chromium, wait_until

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "projections", "projections_replica"]
)

ROWS, BAD_EVERY = 20_000, 200
LAST_GOOD_EMAIL = last_good_email(ROWS, bad_every=BAD_EVERY)


def _shown(page, selector: str) -> int:
    return int(page.locator(selector).text_content().replace(",", "") or 0)


def test_a_redis_restarted_empty_mid_import_ends_exact_in_the_page_and_says_so(
    platform_on_private_redis, private_redis, tmp_path, monkeypatch
):
    platform = platform_on_private_redis
    dora = get_user_model().objects.create_user("dora", password="pw-123456")
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(contacts_csv(ROWS, bad_every=BAD_EVERY))
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # never run inside it. Set after the platform's processes started.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{platform.web_url}/contacts/import/")
        page.fill("#id_username", "dora")
        page.fill("#id_password", "pw-123456")
        page.click("button[type=submit]")
        expect(page.locator("h1")).to_have_text("Import contacts")
        page.set_input_files("#file", str(csv_path))
        # The restart must fall mid-import, however fast the import runs: its last batch
        # waits on this test's transaction until Redis is back.
        database_url = platform.env["DATABASE_URL"]
        with contact_held_uncommitted(database_url, dora.pk, LAST_GOOD_EMAIL) as holder:
            page.click("#start")
            expect(page.locator("#total")).to_have_text(f"{ROWS:,}", timeout=120_000)
            wait_until(
                lambda: backends_waiting_on(connection, holder) > 0,
                timeout=120,
                interval=0.05,
                message="the importer never reached the import's last batch",
            )
            assert _shown(page, "#processed") < ROWS

            private_redis.stop()
            private_redis.start()  # nothing was kept

        expect(page.locator("#problem")).to_contain_text(
            "Live progress was interrupted", timeout=60_000
        )
        bad = ROWS // BAD_EVERY
        expect(page.locator("#summary")).to_have_text(
            f"Done: {ROWS - bad:,} imported, 0 updated, {bad} failed of {ROWS:,} rows.",
            timeout=120_000,
        )
        expect(page.locator("#row-errors-count")).to_have_text(str(bad))
        errors = page.locator("#row-errors li")
        expect(errors).to_have_count(bad)
        lines = errors.evaluate_all("l => l.map(e => Number(e.dataset.line))")
        assert sorted(lines) == [n + 1 for n in range(BAD_EVERY, ROWS + 1, BAD_EVERY)]
    assert platform.exited() == {}
