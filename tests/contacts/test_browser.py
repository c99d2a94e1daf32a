"""A real browser against daphne and every process of the import pipeline: an import
followed live, an import the page comes back to after a reload, the failed rows fixed and
sent again, and an import whose live progress was cut by the loss of the notification
history."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from playwright.sync_api import expect

from contacts.models import Contact, ImportJob
from eventplatform.notifications import history
from tests.helpers import chromium, serve_daphne, wait_until

from .conftest import CELERY_QUEUE, contacts_csv, last_good_email
from .held_rows import backends_waiting_on, contact_held_uncommitted

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "pw-123456"


@pytest.fixture
def live_server_url(pipeline, subprocess_env, tmp_path):
    """Daphne serving HTTP and websockets, beside the pipeline's processes."""
    # Uploads queue the split task on this session's Celery queue, as the worker listens.
    env = {**subprocess_env, "CELERY_TASK_DEFAULT_QUEUE": CELERY_QUEUE}
    with serve_daphne(env=env, log_path=tmp_path / "daphne.log") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def browser(live_server_url, monkeypatch):
    # Playwright's sync API runs an event loop in this thread, which makes Django refuse
    # the test's own ORM calls; they never run inside that loop, so they are safe. Set
    # after the servers started, so no child process inherits it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser:
        yield browser


@pytest.fixture
def import_page(browser, live_server_url):
    """A logged-in page on the upload page (a fresh user, carol)."""
    get_user_model().objects.create_user("carol", password=PASSWORD)
    page = browser.new_page(accept_downloads=True)
    page.goto(f"{live_server_url}/contacts/import/")  # redirects to the login page
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Import contacts")
    return page


def start_import(page, path) -> None:
    page.set_input_files("#file", str(path))
    page.click("#start")


def shown_number(page, selector: str) -> int:
    return int(page.locator(selector).text_content().replace(",", "") or 0)


def test_browser_import_shows_progress_and_summary(import_page, live_server_url, tmp_path):
    page = import_page
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(contacts_csv(2000, bad_every=100))
    start_import(page, csv_path)

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


def test_a_reload_mid_import_comes_back_and_the_failed_rows_go_again_once_fixed(
    import_page, live_server_url, subprocess_env, tmp_path
):
    page = import_page
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(contacts_csv(100_000, bad_every=500))  # 200 bad rows: 2 pages
    carol = get_user_model().objects.get(username="carol")
    # The reload must come mid-import, however fast the import runs: its last batch waits
    # on this test's transaction until the page was reloaded.
    held_email = last_good_email(100_000, bad_every=500)
    with contact_held_uncommitted(subprocess_env["DATABASE_URL"], carol.pk, held_email):
        start_import(page, csv_path)

        # Mid-way: some rows processed, far from all; then the user reloads.
        wait_until(lambda: shown_number(page, "#processed") > 0, timeout=120, interval=0.2)
        job = ImportJob.objects.get()
        expect(page).to_have_url(f"{live_server_url}/contacts/import/{job.id}/")
        assert shown_number(page, "#processed") < 100_000
        page.reload()

    expect(page.locator("#progress-card")).to_be_visible()
    expect(page.locator("#file-name")).to_have_text("contacts.csv")
    expect(page.locator("#summary")).to_have_text(
        "Done: 99,800 imported, 0 updated, 200 failed of 100,000 rows.", timeout=240_000
    )
    expect(page.locator("#percent")).to_have_text("100 %")
    expect(page.locator("#processed")).to_have_text("100,000")
    expect(page.locator("#row-errors-count")).to_have_text("200")
    expect(page.locator("#row-errors li")).to_have_count(100)
    expect(page.locator("#row-errors-page")).to_have_text("Page 1 of 2")
    page.click("#row-errors-next")
    expect(page.locator("#row-errors-page")).to_have_text("Page 2 of 2")
    expect(page.locator("#row-errors li").last).to_have_text(
        "Line 100001: invalid email 'bad-100000@'"
    )
    # The page lists it among the recent imports, linked to this page, and kept current.
    recent = page.locator(f'#recent-imports tr[data-job-id="{job.id}"]')
    expect(recent.locator("a")).to_have_attribute("href", f"/contacts/import/{job.id}/")
    expect(recent.locator("td").nth(2)).to_have_text("completed")

    with page.expect_download() as download:
        page.click("#failed-rows")
    failed_path = tmp_path / "failed.csv"
    download.value.save_as(failed_path)
    failed = failed_path.read_text().splitlines()
    assert failed[0] == "error,email,name,phone,company" and len(failed) == 201
    fixed_path = tmp_path / "fixed.csv"
    fixed_path.write_text(
        "\n".join(re.sub(r",bad-(\d+)@,", r",fixed-\1@example.com,", line) for line in failed)
    )

    page.click("#import-another")
    start_import(page, fixed_path)
    expect(page.locator("#summary")).to_have_text(
        "Done: 200 imported, 0 updated, 0 failed of 200 rows.", timeout=60_000
    )
    expect(page.locator("#ignored")).to_have_text("Ignored columns: error")
    fixed = Contact.objects.filter(email__startswith="fixed-")
    assert sorted(int(c.email[6:].split("@")[0]) for c in fixed) == list(range(500, 100_001, 500))
    assert Contact.objects.count() == 100_000


def test_lost_notification_history_mid_import_ends_exact_and_says_so(
    import_page, subprocess_env, tmp_path
):
    page = import_page
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_bytes(contacts_csv(20_000, bad_every=200))  # 100 bad rows
    carol = get_user_model().objects.get(username="carol")
    # The history must be lost mid-import, however fast the import runs: its last batch
    # waits on this test's transaction until the history is gone.
    held_email = last_good_email(20_000, bad_every=200)
    with contact_held_uncommitted(subprocess_env["DATABASE_URL"], carol.pk, held_email) as holder:
        start_import(page, csv_path)
        expect(page.locator("#total")).to_have_text("20,000", timeout=120_000)
        wait_until(
            lambda: backends_waiting_on(connection, holder) > 0,
            timeout=120,
            interval=0.05,
            message="the importer never reached the import's last batch",
        )

        # What a Redis restarted empty looks like to this channel (the Redis is shared).
        channel = ImportJob.objects.get().channel
        history._client().delete(*history._keys(channel))

    # Said once the next notification arrives: after the importer's next transaction.
    expect(page.locator("#problem")).to_contain_text(
        "Live progress was interrupted", timeout=60_000
    )
    expect(page.locator("#summary")).to_have_text(
        "Done: 19,900 imported, 0 updated, 100 failed of 20,000 rows.", timeout=120_000
    )
    expect(page.locator("#row-errors-count")).to_have_text("100")
    errors = page.locator("#row-errors li")
    expect(errors).to_have_count(100)
    lines = sorted(int(x) for x in errors.evaluate_all("l => l.map(e => e.dataset.line)"))
    assert lines == [n + 1 for n in range(200, 20_001, 200)]
