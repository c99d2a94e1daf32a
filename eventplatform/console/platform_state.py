"""What the platform's own tables and processes say: the outbox, the replica, readiness,
the supervised processes, stuck imports and the KV stores.

The console is platform tooling and may read the apps' state, but it imports no app: the
import jobs are found through the app registry and read as plain values, and the KV
stores through their app's selector, each only when that app is installed.
"""

import json
from datetime import timedelta
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, InterfaceError
from django.test import RequestFactory
from django.utils import timezone

from eventplatform import health, replica
from eventplatform.models import OutboxEvent

#: An import with no sign of life for this long is listed as stuck (the importers' sweeper
#: fails it later, after ``CONTACTS_IMPORT_STALL_SECONDS``).
STUCK_IMPORT_SECONDS = 60


def outbox() -> dict:
    """Rows waiting for the relay, the age of the oldest, and the rows set aside."""
    unsent = OutboxEvent.objects.filter(sent_at__isnull=True)
    waiting = unsent.filter(set_aside_at__isnull=True)
    oldest = waiting.order_by("id").values_list("created_at", flat=True).first()
    set_aside = list(
        unsent.filter(set_aside_at__isnull=False)
        .order_by("-id")
        .values("id", "topic", "key", "set_aside_at", "error")[:20]
    )
    return {
        "backlog": waiting.count(),
        "oldest_unsent_seconds": (timezone.now() - oldest).total_seconds() if oldest else None,
        "set_aside": unsent.filter(set_aside_at__isnull=False).count(),
        "set_aside_rows": [
            {**row, "set_aside_at": row["set_aside_at"].isoformat(), "error": row["error"][:300]}
            for row in set_aside
        ],
    }


def replica_lag() -> dict:
    """The projections replica's replay lag against its bound."""
    bound = settings.PROJECTIONS_REPLICA_MAX_LAG_SECONDS
    try:
        lag = replica.lag_seconds()
    except (DatabaseError, InterfaceError) as error:
        replica.reset_after_failure()
        return {"lag_seconds": None, "bound_seconds": bound, "problem": str(error)[:300]}
    return {"lag_seconds": round(lag, 3), "bound_seconds": bound, "problem": ""}


def readiness() -> dict:
    """What ``/readyz`` answers right now: the failing and degraded parts, by name."""
    response = health.readyz(RequestFactory().get("/readyz"))
    return json.loads(response.content)


def processes() -> dict[str, dict]:
    """The embedded supervisor's processes (state, restarts), when one runs on this var/."""
    return health._supervised_processes()


def stuck_imports(*, limit: int = 50) -> list[dict]:
    """Unfinished import jobs with no progress for longer than ``STUCK_IMPORT_SECONDS``."""
    if not apps.is_installed("contacts"):
        return []
    jobs = apps.get_model("contacts", "ImportJob").objects
    silent_since = timezone.now() - timedelta(seconds=STUCK_IMPORT_SECONDS)
    rows = (
        jobs.filter(failure="", completed_at__isnull=True, progressed_at__lt=silent_since)
        .order_by("progressed_at")
        .values(
            "id",
            "original_name",
            "owner__username",
            "created_at",
            "progressed_at",
            "total_batches",
            "done_batches",
        )[:limit]
    )
    now = timezone.now()
    return [
        {
            "id": str(row["id"]),
            "file": row["original_name"],
            "owner": row["owner__username"],
            "created_at": row["created_at"].isoformat(),
            "silent_seconds": int((now - row["progressed_at"]).total_seconds()),
            "batches": f"{row['done_batches']}/{row['total_batches'] or '?'}",
        }
        for row in rows
    ]


def kv_stores() -> list[dict]:
    """Each KV namespace's store in this process: caught up or not, and its entries."""
    if not apps.is_installed("kvconfig"):
        return []
    selectors = import_module("kvconfig.selectors")
    return [
        {
            "namespace": status.namespace.name,
            "topic": status.namespace.topic,
            "ready": status.ready,
            "entries": status.entries,
            "problem": status.problem,
        }
        for status in selectors.namespace_statuses(wait=0.5)
    ]
