"""ASGI entry point: HTTP through Django, websockets through Channels (daphne serves both)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from . import server_limits  # noqa: E402
from .routing import websocket_urlpatterns  # noqa: E402
from .websocket_auth import BearerTokenMiddleware  # noqa: E402

server_limits.install()

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(BearerTokenMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
