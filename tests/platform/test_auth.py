import pytest
from django.contrib.auth.models import User

from eventplatform.models import ApiToken, hash_token


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", password="wonderland-1")


@pytest.mark.django_db(transaction=True)
def test_create_api_token_prints_a_token_that_is_stored_only_hashed(manage):
    User.objects.create_user("bob")
    token = manage("create_api_token", "bob", "--name", "ci").stdout.strip()
    row = ApiToken.objects.get(user__username="bob")
    assert row.name == "ci"
    assert row.token_hash == hash_token(token)
    assert token not in row.token_hash


def test_create_api_token_for_an_unknown_user_is_a_clear_error(manage, db):
    result = manage("create_api_token", "nobody", check=False)
    assert result.returncode == 1
    assert "no user named 'nobody'" in result.stderr


def test_a_bearer_token_authenticates(client, alice):
    _, token = ApiToken.issue(alice)
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"username": "alice", "read_only": False}
    assert ApiToken.objects.get().last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute_not_on_every_request(client, alice):
    _, token = ApiToken.issue(alice)
    headers = {"Authorization": f"Bearer {token}"}
    client.get("/api/me", headers=headers)
    first = ApiToken.objects.get().last_used_at
    for _ in range(3):
        assert client.get("/api/me", headers=headers).status_code == 200
    assert ApiToken.objects.get().last_used_at == first


@pytest.mark.django_db(transaction=True)
def test_create_api_token_read_only_makes_a_token_that_may_only_read(manage, client):
    User.objects.create_user("svc")
    token = manage("create_api_token", "svc", "--read-only").stdout.strip()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).json() == {"username": "svc", "read_only": True}
    response = client.post("/api/contacts/channels", headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "this token is read-only: it may not write"


def test_a_revoked_token_is_refused_at_once_in_this_process(client, alice):
    row, token = ApiToken.issue(alice)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/me", headers=headers).status_code == 200
    row.delete()
    assert client.get("/api/me", headers=headers).status_code == 401


def test_a_wrong_token_or_none_is_refused(client, alice):
    ApiToken.issue(alice)
    assert client.get("/api/me", headers={"Authorization": "Bearer forged"}).status_code == 401
    response = client.get("/api/me")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["detail"].startswith("authentication required")


def test_a_write_without_a_token_is_401_not_a_csrf_failure(alice):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    for headers in ({}, {"Authorization": "Bearer forged"}):
        response = browser.post("/api/contacts/channels", headers=headers)
        assert response.status_code == 401, response.content
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_of_a_deactivated_user_is_refused(client, alice):
    _, token = ApiToken.issue(alice)
    alice.is_active = False
    alice.save()
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_logged_in_session_authenticates(client, alice):
    client.login(username="alice", password="wonderland-1")
    assert client.get("/api/me").json() == {"username": "alice", "read_only": False}
