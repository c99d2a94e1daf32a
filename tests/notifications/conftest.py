import pytest
from django.contrib.auth import get_user_model

from tests.notifications.client import channel_layers_without_read_timeout


@pytest.fixture
def make_user(db):
    def make(name: str = "alice"):
        return get_user_model().objects.create_user(name, password="pw-123456")

    return make


@pytest.fixture(autouse=True)
def _channel_layers(settings):
    channel_layers_without_read_timeout(settings)
