"""A real browser: log in, upload 2,000 rows with 20 bad ones, watch the import finish."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect, sync_playwright

from tests.helpers import serve_daphne

from .conftest import CELERY_QUEUE, contacts_csv

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def live_server_url(pipeline, subprocess_env, tmp_path):
    """Daphne serving HTTP and websockets, beside the pipeline's processes."""
    # Uploads queue the split task on this session's Celery queue, as the worker listens.
    env = {**subprocess_env, "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE}
    with serve_daphne(env=env, log_path=tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


def test_browser_import_shows_progress_and_summary(live_server_url, tmp_path):
    get_user_model().objects.create_user("carol", password="pw-123456")
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(contacts_csv(2000, bad_every=100))

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(f"{live_server_url}/contacts/import/")  # redirects to the login page
            page.fill("#id_username", "carol")
            page.fill("#id_password", "pw-123456")
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Import contacts")

            page.set_input_files("#file", str(csv_path))
            page.click("#start")

            expect(page.locator("#summary")).to_be_visible(timeout=90_000)
            expect(page.locator("#percent")).to_have_text("100 %")
            expect(page.locator("#progress")).to_have_attribute("aria-valuenow", "100")
            expect(page.locator("#imported")).to_have_text("1,980")
            expect(page.locator("#failed")).to_have_text("20")
            expect(page.locator("#summary")).to_have_text(
                "Done: 1,980 imported, 0 updated, 20 failed of 2,000 rows."
            )
            errors = page.locator("#row-errors li")
            expect(errors).to_have_count(20)
            lines = sorted(int(x) for x in errors.evaluate_all("l => l.map(e => e.dataset.line)"))
            assert lines == [n + 1 for n in range(100, 2001, 100)]
            expect(errors.first).to_contain_text("invalid email")

            page.goto(f"{live_server_url}/contacts/?q=user1999@")
            expect(page.locator("#contacts tbody tr")).to_have_count(1)
        finally:
            browser.close()
