"""The shared event platform: settings, Kafka toolkit, outbox, notifications, health."""

from .celery import app as celery_app

__all__ = ["celery_app"]
