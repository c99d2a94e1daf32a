"""``/api/docs`` in a real browser that may reach nothing but the platform itself."""

from urllib.parse import urlparse

from playwright.sync_api import expect

from tests.helpers import chromium, serve_daphne


def test_api_docs_render_every_endpoint_with_the_network_blocked(subprocess_env, tmp_path):
    with serve_daphne(env=subprocess_env, log_path=tmp_path / "daphne.log") as port:
        platform = f"127.0.0.1:{port}"
        blocked: list[str] = []

        def only_the_platform(route):
            if urlparse(route.request.url).netloc == platform:
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort("internetdisconnected")

        with chromium() as browser:
            page = browser.new_page()
            page.route("**/*", only_the_platform)
            page.goto(f"http://{platform}/api/docs")
            operations = page.locator(".opblock-summary-path")
            expect(operations.first).to_be_visible(timeout=30_000)
            paths = set(operations.evaluate_all("els => els.map(e => e.dataset.path)"))
            page.screenshot(path=tmp_path / "api-docs.png", full_page=True)

    assert blocked == []  # nothing was even attempted outside the platform
    assert {
        "/api/sites",
        "/api/sites/{site_id}",
        "/api/installed-apps/sites/{site_id}",
        "/api/contacts/imports",
        "/api/kv/{namespace}/{key}",
    } <= paths
    assert (tmp_path / "api-docs.png").stat().st_size > 10_000
