"""Reads of the installed-apps projection, from ``projections_replica`` only.

Each read is one statement, so it sees one snapshot: a site's apps always match its
version, and the live generation is resolved inside the same statement.
"""

import uuid
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from django.db import connections
from django.utils.dateparse import parse_datetime
from psycopg import pq

from eventplatform.routers import PROJECTIONS_REPLICA

from .documents import entity_tag
from .generations import STATE
from .models import InstalledApp, ProjectedSite, ProjectionState


@dataclass(frozen=True, slots=True)
class SiteWithApp:
    site_id: uuid.UUID
    site_version: int
    installed_at: datetime


@dataclass(frozen=True, slots=True)
class SiteDocument:
    """A site's row in the replica's live generation: its version and, unless it is
    deleted, the ``SiteAppsOut`` JSON document the projector stored for that version."""

    generation: int
    version: int
    document: bytes | None

    @property
    def etag(self) -> str:
        return entity_tag(generation=self.generation, version=self.version)


def site_document(*, site_id: uuid.UUID) -> SiteDocument | None:
    """The site's stored document, or ``None`` if the replica has never seen the site.

    A deleted site comes back with its tombstone's version and no document, so a caller
    asking for a minimum version can tell "deleted" from "not replicated yet".
    """
    connection = connections[PROJECTIONS_REPLICA]
    if connection.vendor == "postgresql" and not _instrumented(connection):
        return _site_document_prepared(connection, site_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _SITE_DOCUMENT.format(state="%s", site="%s"),
            [STATE, _uuid_param(connection, site_id)],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    generation, version, document = row
    return SiteDocument(generation, version, None if document is None else document.encode())


_SITE_DOCUMENT = (
    f"SELECT generation, version, document FROM {ProjectedSite._meta.db_table}"
    f" WHERE generation = (SELECT live_generation FROM {ProjectionState._meta.db_table}"
    " WHERE name = {state}) AND site_id = {site}"
)


def _instrumented(connection) -> bool:
    """Whether something watches this connection's queries (``DEBUG``, a test capturing
    them, an execute wrapper): they then go through Django's cursor, where it sees them."""
    return connection.queries_logged or bool(connection.execute_wrappers)


# The hottest read of the platform goes to libpq directly, as a statement this session
# prepared once: Django's cursor and psycopg's would bind parameters, adapt types and
# build rows on every request, costing several times the look-up itself. The one
# statement takes text parameters and answers text columns, so nothing needs adapting.
_STATEMENT = b"installed_apps_site_document"
_STATE = STATE.encode()
#: The libpq connections whose session has prepared the statement.
_prepared: "weakref.WeakSet[object]" = weakref.WeakSet()


def _site_document_prepared(connection, site_id: uuid.UUID) -> SiteDocument | None:
    with connection.wrap_database_errors:
        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        if pgconn not in _prepared:
            sql = _SITE_DOCUMENT.format(state="$1", site="$2::uuid")
            _check(pgconn, pgconn.prepare(_STATEMENT, sql.encode()), pq.ExecStatus.COMMAND_OK)
            _prepared.add(pgconn)
        result = pgconn.exec_prepared(_STATEMENT, [_STATE, str(site_id).encode()])
        _check(pgconn, result, pq.ExecStatus.TUPLES_OK)
    if not result.ntuples:
        return None
    return SiteDocument(
        int(result.get_value(0, 0)), int(result.get_value(0, 1)), result.get_value(0, 2)
    )


def _check(pgconn, result, expected: "pq.ExecStatus") -> None:
    """Raise the error psycopg would have raised for a failed ``result``: a lost
    connection is an ``OperationalError`` (the replica is unavailable), as there."""
    if result.status == expected:
        return
    if pgconn.status == pq.ConnStatus.BAD:
        raise psycopg.OperationalError(pgconn.get_error_message() or "the connection was lost")
    raise psycopg.errors.error_from_result(result)


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
