"""Reads of the installed-apps projection, from ``projections_replica`` only.

Each read is one statement, so it sees one snapshot: a site's apps always match its
version, and the live generation is resolved inside the same statement.
"""

import json
import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections
from django.utils.dateparse import parse_datetime

from eventplatform.routers import PROJECTIONS_REPLICA

from .generations import STATE
from .models import InstalledApp, ProjectedSite, ProjectionState


@dataclass(frozen=True)
class ProjectedApp:
    app_id: str
    installed_at: datetime


@dataclass(frozen=True)
class SiteApps:
    site_id: uuid.UUID
    version: int
    projected_at: datetime
    apps: list[ProjectedApp]


@dataclass(frozen=True)
class SiteWithApp:
    site_id: uuid.UUID
    site_version: int
    installed_at: datetime


def site_apps(*, site_id: uuid.UUID) -> SiteApps | None:
    """The apps of a projected site, or ``None`` if it is unknown or deleted."""
    connection = connections[PROJECTIONS_REPLICA]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT s.version, s.projected_at, a.app_id, a.installed_at"
            f" FROM {_table(ProjectedSite)} s LEFT JOIN {_table(InstalledApp)} a"
            f" ON a.generation = s.generation AND a.site_id = s.site_id"
            f" WHERE s.generation = ({_LIVE_GENERATION}) AND s.site_id = %s AND NOT s.deleted"
            f" ORDER BY a.app_id",
            [STATE, _uuid_param(connection, site_id)],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    version, projected_at = rows[0][0], rows[0][1]
    return SiteApps(
        site_id=site_id,
        version=version,
        projected_at=_as_datetime(projected_at),
        apps=[
            ProjectedApp(app_id=app_id, installed_at=_as_datetime(installed_at))
            for _, _, app_id, installed_at in rows
            if app_id is not None
        ],
    )


@dataclass(frozen=True)
class SiteDocument:
    """A site's row in the replica's projection: its version and, unless it is deleted,
    its ``SiteAppsOut`` JSON document."""

    version: int
    document: str | None


def site_apps_document(*, site_id: uuid.UUID) -> SiteDocument | None:
    """The site's version and :func:`site_apps` as a JSON document, or ``None`` if unknown.

    A deleted site comes back with its tombstone's version and no document, so a caller
    asking for a minimum version can tell "deleted" from "not replicated yet". On
    PostgreSQL the database builds the document in the same single statement: the hot
    read path then parses and re-serialises nothing, which halves its client CPU.
    """
    connection = connections[PROJECTIONS_REPLICA]
    if connection.vendor != "postgresql":
        return _site_document_in_python(site_id)
    with connection.cursor() as cursor:
        _execute_prepared(cursor, "installed_apps_site_document", _SITE_DOCUMENT, [STATE, site_id])
        row = cursor.fetchone()
    return None if row is None else SiteDocument(version=row[0], document=row[1])


def _site_document_in_python(site_id: uuid.UUID) -> SiteDocument | None:
    found = site_apps(site_id=site_id)
    if found is not None:
        return SiteDocument(version=found.version, document=json.dumps(_as_document(found)))
    # Not found as a live site: a tombstone still has a version to report.
    connection = connections[PROJECTIONS_REPLICA]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT version FROM {_table(ProjectedSite)}"
            f" WHERE generation = ({_LIVE_GENERATION}) AND site_id = %s",
            [STATE, _uuid_param(connection, site_id)],
        )
        row = cursor.fetchone()
    return None if row is None else SiteDocument(version=row[0], document=None)


_SITE_DOCUMENT = (
    "SELECT s.version, CASE WHEN NOT s.deleted THEN json_build_object("
    " 'site_id', s.site_id, 'version', s.version, 'projected_at', s.projected_at,"
    " 'apps', COALESCE((SELECT json_agg(json_build_object("
    "   'app_id', a.app_id, 'installed_at', a.installed_at) ORDER BY a.app_id)"
    f"  FROM {InstalledApp._meta.db_table} a"
    "   WHERE a.generation = s.generation AND a.site_id = s.site_id), '[]'))::text END"
    f" FROM {ProjectedSite._meta.db_table} s"
    f" WHERE s.generation = (SELECT live_generation FROM {ProjectionState._meta.db_table}"
    " WHERE name = $1) AND s.site_id = $2::uuid"
)

#: For each raw PostgreSQL connection, the statements already prepared in its session.
_prepared: "weakref.WeakKeyDictionary[object, set[str]]" = weakref.WeakKeyDictionary()


def _execute_prepared(cursor, name: str, sql: str, params: list) -> None:
    """Run ``sql`` as a prepared statement of this session, preparing it on first use.

    Django binds parameters client-side, so PostgreSQL would otherwise plan the query
    again on every request; planning costs more than running this indexed look-up.
    """
    raw = cursor.db.connection
    names = _prepared.setdefault(raw, set())
    if name not in names:
        cursor.execute(f"PREPARE {name} AS {sql}")
        names.add(name)
    cursor.execute(f"EXECUTE {name} ({', '.join(['%s'] * len(params))})", params)


def _as_document(found: SiteApps) -> dict:
    return {
        "site_id": str(found.site_id),
        "version": found.version,
        "projected_at": found.projected_at.isoformat(),
        "apps": [
            {"app_id": app.app_id, "installed_at": app.installed_at.isoformat()}
            for app in found.apps
        ],
    }


def sites_with_app(
    *, app_id: str, after: uuid.UUID | None, limit: int
) -> tuple[list[SiteWithApp], bool]:
    """Up to ``limit`` sites having ``app_id``, in site id order after ``after``.

    Returns the page and whether more follow. Keyset order on the site id keeps pages stable
    while the projection changes: no site is skipped or repeated because of other writes.
    """
    connection = connections[PROJECTIONS_REPLICA]
    params = [STATE, app_id]
    after_clause = ""
    if after is not None:
        after_clause = " AND site_id > %s"
        params.append(_uuid_param(connection, after))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT site_id, site_version, installed_at FROM {_table(InstalledApp)}"
            f" WHERE generation = ({_LIVE_GENERATION}) AND app_id = %s{after_clause}"
            f" ORDER BY site_id LIMIT %s",
            [*params, limit + 1],
        )
        rows = cursor.fetchall()
    page = [
        SiteWithApp(
            site_id=_as_uuid(site_id),
            site_version=site_version,
            installed_at=_as_datetime(installed_at),
        )
        for site_id, site_version, installed_at in rows[:limit]
    ]
    return page, len(rows) > limit


def _table(model) -> str:
    return connections[PROJECTIONS_REPLICA].ops.quote_name(model._meta.db_table)


_LIVE_GENERATION = f"SELECT live_generation FROM {ProjectionState._meta.db_table} WHERE name = %s"


def _uuid_param(connection, value: uuid.UUID):
    return value if connection.features.has_native_uuid_field else value.hex


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _as_datetime(value) -> datetime:
    # SQLite hands back naive UTC text; PostgreSQL an aware datetime.
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
