"""Applies a batch of site changes to the projection with a few set-based statements.

Per generation: one version-guarded upsert of the site rows (``ON CONFLICT ... WHERE
version < excluded.version RETURNING``) says which sites actually moved forward; only those
get their app rows replaced. A change at or below the stored version (a duplicate, a late
event, an event older than a deletion's tombstone) therefore changes nothing. Each site row
carries the document the read API serves for its version, built here once per batch.

On PostgreSQL that is three round trips per generation: the upsert, the delete of the
advanced sites' app rows and a COPY of their new app rows. The delete is a statement of its
own: an upsert that waited for another writer's site row sees that writer's app rows only
from its next statement on (each statement reads the database as it was when it began), so
a delete inside the upsert would leave them behind.
"""

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

import psycopg
from django.db import connections
from django.utils import timezone

from eventplatform.routers import PROJECTIONS

from ..events import SiteChange
from .documents import site_document, utc_text
from .models import InstalledApp, ProjectedSite

#: Rows per INSERT statement: well under PostgreSQL's and SQLite's parameter limits.
ROWS_PER_STATEMENT = 1000


def project(*, changes: Iterable[SiteChange], generations: Sequence[int]) -> int:
    """Apply ``changes`` to each of ``generations``; return how many sites moved forward.

    Runs in the caller's transaction on ``projections``.
    """
    newest: dict[UUID, SiteChange] = {}
    for change in changes:
        seen = newest.get(change.site_id)
        if seen is None or change.version > seen.version:
            newest[change.site_id] = change
    # A fixed order means two writers lock site rows in the same order: no deadlocks.
    # (UUIDs order as their integers do; comparing those skips UUID's Python-level __lt__.)
    ordered = [newest[site_id] for site_id in sorted(newest, key=_as_int)]
    if not ordered:
        return 0
    now = timezone.now()
    # Each time is spelled once, for the document and (on PostgreSQL) the app rows alike.
    apps_text = {change.site_id: _apps_text(change) for change in ordered}
    documents = [_document(change, utc_text(now), apps_text) for change in ordered]
    connection = connections[PROJECTIONS]
    if connection.vendor == "postgresql":
        writer = _PostgresWriter(connection, apps_text)
    else:
        writer = _Writer(connection)
    applied = 0
    for generation in generations:
        advanced = writer.upsert_sites(generation, ordered, documents, now)
        winners = [change for change in ordered if change.site_id in advanced]
        writer.replace_apps(generation, winners)
        applied = max(applied, len(winners))
    return applied


class _Writer:
    def __init__(self, connection):
        self.connection = connection
        quote = connection.ops.quote_name
        self.sites_table = quote(ProjectedSite._meta.db_table)
        self.apps_table = quote(InstalledApp._meta.db_table)
        native_uuid = connection.features.has_native_uuid_field
        self.uuid_param = (lambda value: value) if native_uuid else (lambda value: value.hex)
        self.datetime_param = connection.ops.adapt_datetimefield_value

    def upsert_sites(
        self,
        generation: int,
        changes: list[SiteChange],
        documents: list[str | None],
        now: datetime,
    ) -> set[UUID]:
        """Insert or advance the site rows (``documents[i]`` is the document of
        ``changes[i]``); return the ids whose row changed."""
        now = self.datetime_param(now)
        advanced: set[UUID] = set()
        for start in range(0, len(changes), ROWS_PER_STATEMENT):
            chunk = changes[start : start + ROWS_PER_STATEMENT]
            chunk_documents = documents[start : start + ROWS_PER_STATEMENT]
            params = []
            for change, document in zip(chunk, chunk_documents, strict=True):
                params += [
                    generation,
                    self.uuid_param(change.site_id),
                    change.version,
                    change.deleted,
                    now,
                    document,
                ]
            sql = (
                f"INSERT INTO {self.sites_table} "
                "(generation, site_id, version, deleted, projected_at, document) VALUES "
                + ",".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (generation, site_id) DO UPDATE SET"
                " version = excluded.version, deleted = excluded.deleted,"
                " projected_at = excluded.projected_at, document = excluded.document"
                f" WHERE {self.sites_table}.version < excluded.version"
                " RETURNING site_id"
            )
            with self.connection.cursor() as cursor:
                cursor.execute(sql, params)
                advanced.update(_as_uuid(row[0]) for row in cursor.fetchall())
        return advanced

    def replace_apps(self, generation: int, changes: list[SiteChange]) -> None:
        """Replace the app rows of sites whose row this transaction advanced (and locked)."""
        with self.connection.cursor() as cursor:
            for chunk in _chunks(changes):
                cursor.execute(
                    f"DELETE FROM {self.apps_table} WHERE generation = %s AND site_id IN ("
                    + ",".join(["%s"] * len(chunk))
                    + ")",
                    [generation, *(self.uuid_param(change.site_id) for change in chunk)],
                )
            rows = [
                (
                    generation,
                    self.uuid_param(change.site_id),
                    app_id,
                    self.datetime_param(_as_datetime(installed_at)),
                    change.version,
                )
                for change in changes
                if not change.deleted
                for app_id, installed_at in change.apps
            ]
            for chunk in _chunks(rows):
                cursor.execute(
                    f"INSERT INTO {self.apps_table} "
                    "(generation, site_id, app_id, installed_at, site_version) VALUES "
                    + ",".join(["(%s, %s, %s, %s, %s)"] * len(chunk)),
                    [value for row in chunk for value in row],
                )


class _PostgresWriter(_Writer):
    """The same effects in fewer, cheaper round trips: the site upsert and the delete of
    the advanced sites' app rows take whole columns as binary arrays (``unnest``, ``ANY``),
    and the app rows go in by COPY as one block of text, their times as the documents spell
    them."""

    def __init__(self, connection, apps_text: dict[UUID, list[tuple[str, str]]]):
        super().__init__(connection)
        self.apps_text = apps_text

    def upsert_sites(
        self,
        generation: int,
        changes: list[SiteChange],
        documents: list[str | None],
        now: datetime,
    ) -> set[UUID]:
        # Bound on the server, in binary: Django's cursor would spell the arrays out as
        # SQL literals, escaping every quote of every document. Errors are wrapped like
        # any query's, so an outage is still retried.
        with self.connection.wrap_database_errors, self._binding_cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.sites_table} "
                "(generation, site_id, version, deleted, projected_at, document)"
                " SELECT %(generation)s, c.site_id, c.version, c.deleted, %(now)s, c.document"
                " FROM unnest(%(site_ids)b::uuid[], %(versions)b::bigint[],"
                " %(deleted)b::boolean[], %(documents)b::text[])"
                " AS c(site_id, version, deleted, document) ORDER BY c.site_id"
                " ON CONFLICT (generation, site_id) DO UPDATE SET"
                " version = excluded.version, deleted = excluded.deleted,"
                " projected_at = excluded.projected_at, document = excluded.document"
                f" WHERE {self.sites_table}.version < excluded.version"
                " RETURNING site_id",
                {
                    "generation": generation,
                    "now": now,
                    "site_ids": [change.site_id for change in changes],
                    "versions": [change.version for change in changes],
                    "deleted": [change.deleted for change in changes],
                    "documents": documents,
                },
            )
            return {row[0] for row in cursor.fetchall()}

    def replace_apps(self, generation: int, changes: list[SiteChange]) -> None:
        """Deletes the app rows of every advanced site, a new one too (app rows left
        without their site row, in a projections database emptied by hand, must not block
        the COPY), then copies in the new ones."""
        if not changes:
            return
        with self.connection.wrap_database_errors, self._binding_cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {self.apps_table}"
                " WHERE generation = %(generation)s AND site_id = ANY(%(site_ids)b::uuid[])",
                {"generation": generation, "site_ids": [change.site_id for change in changes]},
            )
        # COPY is PostgreSQL's bulk path: no per-row statement or parameter handling;
        # the rows are spelled out here in one pass rather than adapted one by one.
        rows = []
        for change in changes:
            if change.deleted:
                continue
            site, version = f"{generation}\t{change.site_id}\t", f"\t{change.version}\n"
            rows += [
                f"{site}{_copy_field(app_id)}\t{installed_at}{version}"
                for app_id, installed_at in self.apps_text[change.site_id]
            ]
        if not rows:
            return
        with (
            self.connection.wrap_database_errors,
            self._binding_cursor() as cursor,
            cursor.copy(
                f"COPY {self.apps_table}"
                " (generation, site_id, app_id, installed_at, site_version) FROM STDIN"
            ) as copy,
        ):
            copy.write("".join(rows))

    def _binding_cursor(self) -> psycopg.Cursor:
        """A psycopg cursor on the batch's connection (and transaction) that binds its
        parameters on the server."""
        self.connection.ensure_connection()
        return psycopg.Cursor(self.connection.connection)


#: COPY's text format gives a meaning to these characters; an app id spelled with them
#: would go in escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@functools.lru_cache(maxsize=4096)
def _copy_field(text: str) -> str:
    # Remembered: a batch spells the same few app ids over and over.
    return text.translate(_COPY_ESCAPES)


def _apps_text(change: SiteChange) -> list[tuple[str, str]]:
    # A parsed change carries its times as UTC text already; one built by hand may not.
    return [
        (app_id, installed_at if type(installed_at) is str else utc_text(installed_at))
        for app_id, installed_at in change.apps
    ]


def _document(
    change: SiteChange, projected_at: str, apps_text: dict[UUID, list[tuple[str, str]]]
) -> str | None:
    if change.deleted:
        return None
    return site_document(
        site_id=change.site_id,
        version=change.version,
        projected_at=projected_at,
        apps=apps_text[change.site_id],
    )


def _chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        yield items[start : start + ROWS_PER_STATEMENT]


def _as_int(site_id: UUID) -> int:
    return site_id.int


def _as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _as_datetime(value: str | datetime) -> datetime:
    return datetime.fromisoformat(value) if type(value) is str else value
