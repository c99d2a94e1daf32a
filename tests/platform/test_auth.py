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
    assert response.json() == {"username": "alice"}
    assert ApiToken.objects.get().last_used_at is not None


def test_a_wrong_token_or_none_is_refused(client, alice):
    ApiToken.issue(alice)
    assert client.get("/api/me", headers={"Authorization": "Bearer forged"}).status_code == 401
    assert client.get("/api/me").status_code == 401


def test_a_token_of_a_deactivated_user_is_refused(client, alice):
    _, token = ApiToken.issue(alice)
    alice.is_active = False
    alice.save()
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_a_logged_in_session_authenticates(client, alice):
    client.login(username="alice", password="wonderland-1")
    assert client.get("/api/me").json() == {"username": "alice"}
