"""``/healthz`` (process up), ``/readyz`` (dependencies reachable), ``/metrics``."""

import json
import os

import redis
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connections
from django.http import HttpResponse, JsonResponse

from . import metrics, replica
from .kafka.shared_admin import shared_admin


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_databases() -> None:
    for alias in settings.DATABASES:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        except (DatabaseError, InterfaceError):
            # Its next use then connects afresh, so readiness recovers with the database.
            connections[alias].close()
            raise


def _check_redis() -> None:
    redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2).ping()


def _check_kafka() -> None:
    with shared_admin() as admin:
        admin.list_topics()


CHECKS = {"database": _check_databases, "redis": _check_redis, "kafka": _check_kafka}


def readyz(request):
    """200 when every dependency answers; 503 naming each failing part otherwise.

    A projections replica further behind than ``PROJECTIONS_REPLICA_MAX_LAG_SECONDS``
    keeps the answer at 200, since the read API still serves (clients that need a version
    ask for it), but reports ``degraded`` with the lag.
    """
    failures = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:  # any failure means "not ready"; say which and why
            failures[name] = f"{type(error).__name__}: {error}"[:300]
    lag = None
    if not failures:
        try:
            lag = replica.lag_seconds()
        except (DatabaseError, InterfaceError) as error:
            replica.reset_after_failure()
            failures["database"] = f"{type(error).__name__}: {error}"[:300]
    processes = _supervised_processes()
    for name, process in processes.items():
        if name in INFRASTRUCTURE and process.get("state") == "recovering":
            failures.setdefault(name, f"restarting: {process.get('problem') or 'it died'}")
    if failures:
        return JsonResponse({"status": "unavailable", "failing": failures}, status=503)
    degraded = {
        name: f"{process['state']} ({process.get('restarts', 0)} restarts)"
        for name, process in processes.items()
        if process.get("state") in ("failing", "held")
    }
    body = {}
    bound = settings.PROJECTIONS_REPLICA_MAX_LAG_SECONDS
    if lag > bound:
        degraded["projections_replica"] = f"replay lag {lag:.1f} s exceeds {bound:g} s"
        body["projections_replica_lag_seconds"] = round(lag, 3)
    if degraded:
        # Still 200: what runs keeps serving; the body says what does not.
        return JsonResponse({"status": "degraded", "degraded": degraded, **body})
    return JsonResponse({"status": "ready"})


#: Supervised parts whose restart makes the whole platform unready meanwhile.
INFRASTRUCTURE = ("broker", "redis")


def _supervised_processes() -> dict[str, dict]:
    """The embedded supervisor's view of its processes, if one is running on this var/.

    ``runplatform`` keeps ``processes.json`` up to date; a file left by a supervisor that
    no longer runs says nothing about now, and is ignored.
    """
    path = settings.PLATFORM_STATUS_FILE
    try:
        status = json.loads(path.read_text())
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return status.get("processes") or {}


def metrics_view(request):
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)
