"""Websocket routes, mounted by ``asgi.py`` under Channels' auth middleware.

The last route catches every other path, so an unknown path is closed with
``UNKNOWN_PATH`` (4404) rather than failing the handshake with an error and a traceback.
"""

from django.urls import path, re_path

from .console.consumers import ConsoleConsumer
from .notifications.consumers import NotificationConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/notifications/<str:channel>/", NotificationConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
