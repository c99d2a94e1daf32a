"""``/healthz`` (process up), ``/readyz`` (dependencies reachable), ``/metrics``."""

import threading

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from kafka import KafkaAdminClient

from . import metrics
from .kafka.config import client_options

_kafka_lock = threading.Lock()
_kafka_admin: KafkaAdminClient | None = None


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_databases() -> None:
    for alias in settings.DATABASES:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")


def _check_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()


def _check_kafka() -> None:
    global _kafka_admin
    with _kafka_lock:
        try:
            if _kafka_admin is None:
                _kafka_admin = KafkaAdminClient(
                    **client_options(),
                    request_timeout_ms=3000,
                    bootstrap_timeout_ms=3000,
                    client_id="readyz",
                )
            _kafka_admin.list_topics()
        except Exception:
            if _kafka_admin is not None:
                _kafka_admin.close()
            _kafka_admin = None
            raise


CHECKS = {"database": _check_databases, "redis": _check_redis, "kafka": _check_kafka}


def readyz(request):
    """200 when every dependency answers; 503 naming each failing part otherwise."""
    failures = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure means "not ready"; say which and why
            failures[name] = f"{type(error).__name__}: {error}"[:300]
    if failures:
        return JsonResponse({"status": "unavailable", "failing": failures}, status=503)
    return JsonResponse({"status": "ready"})


def metrics_view(request):
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
