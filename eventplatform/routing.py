"""Websocket routes, mounted by ``asgi.py`` under Channels' auth middleware."""

from django.urls import path

from .notifications.consumers import NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/<str:channel>/", NotificationConsumer.as_asgi()),
]
