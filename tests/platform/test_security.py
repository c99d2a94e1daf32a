"""Production settings from the environment (secure cookies, HSTS, SSL redirect, proxy
header) and login throttling on the login page and the admin's (django-axes)."""

import json
import secrets
import subprocess
import sys

import pytest
from django.contrib.auth.models import User

from ..conftest import ROOT

# Runs in a child process: the settings module reads DEBUG and the rest at import time.
PROBE = """
import json
from django.test import Client
client = Client()
login_page = client.get("/accounts/login/", secure=True)
answer = client.post(
    "/accounts/login/", {"username": "alice", "password": "wonderland-1"}, secure=True,
    headers={"X-CSRFToken": client.cookies["csrftoken"].value},
)
plain = Client().get("/accounts/login/")
health = Client().get("/healthz")
print(json.dumps({
    "login": answer.status_code,
    "cookies": {
        name: {"secure": bool(m["secure"]), "httponly": bool(m["httponly"])}
        for name, m in client.cookies.items()
    },
    "hsts": login_page.headers.get("Strict-Transport-Security"),
    "plain_http": [plain.status_code, plain.headers.get("Location")],
    "health": health.status_code,
}))
"""


def probe(subprocess_env, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", PROBE],
        cwd=ROOT,
        env={
            **subprocess_env,
            "DJANGO_SETTINGS_MODULE": "eventplatform.settings",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "ALLOWED_HOSTS": "testserver",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_production_defaults_make_cookies_secure_and_send_hsts(subprocess_env):
    User.objects.create_user("alice", password="wonderland-1")
    seen = probe(subprocess_env, DEBUG="false")
    assert seen["login"] == 302
    assert seen["cookies"]["sessionid"] == {"secure": True, "httponly": True}
    assert seen["cookies"]["csrftoken"] == {"secure": True, "httponly": True}
    assert seen["hsts"] == "max-age=31536000"
    assert seen["plain_http"] == [301, "https://testserver/accounts/login/"]
    assert seen["health"] == 200  # probes are exempt from the redirect


@pytest.mark.django_db(transaction=True)
def test_each_production_setting_is_its_own_environment_variable(subprocess_env):
    User.objects.create_user("alice", password="wonderland-1")
    seen = probe(
        subprocess_env,
        DEBUG="false",
        SECURE_SSL_REDIRECT="false",
        CSRF_COOKIE_HTTPONLY="false",
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
    )
    assert seen["cookies"]["csrftoken"] == {"secure": True, "httponly": False}
    assert seen["hsts"] == "max-age=600; includeSubDomains"
    assert seen["plain_http"] == [200, None]


@pytest.fixture
def alice(db):
    return User.objects.create_superuser("alice", "alice@example.com", "wonderland-1")


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_the_sixth_failed_login_within_a_minute_is_throttled(client, alice, login_url):
    wrong = {"username": "alice", "password": "not-it", "next": "/"}
    statuses = [client.post(login_url, wrong).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    # Locked out, the right password is refused too until the cool-off ends.
    right = {"username": "alice", "password": "wonderland-1", "next": "/"}
    assert client.post(login_url, right).status_code == 429


def test_a_good_login_still_works_under_the_limit(client, alice):
    wrong = {"username": "alice", "password": "not-it"}
    for _ in range(4):
        client.post("/accounts/login/", wrong)
    response = client.post("/accounts/login/", {"username": "alice", "password": "wonderland-1"})
    assert response.status_code == 302
