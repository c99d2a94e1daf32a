import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def make_user(db):
    def make(name: str = "alice"):
        return get_user_model().objects.create_user(name, password="pw-123456")

    return make
