"""Applies a batch of site changes to the projection with a few set-based statements.

Per generation: one version-guarded upsert of the site rows (``ON CONFLICT ... WHERE
version < excluded.version RETURNING``) says which sites actually moved forward; only those
get their app rows replaced. A change at or below the stored version (a duplicate, a late
event, an event older than a deletion's tombstone) therefore changes nothing.
"""

from collections.abc import Iterable, Sequence
from uuid import UUID

from django.db import connections
from django.utils import timezone

from eventplatform.routers import PROJECTIONS

from ..events import SiteChange
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
    ordered = [newest[site_id] for site_id in sorted(newest)]
    connection = connections[PROJECTIONS]
    writer = (_PostgresWriter if connection.vendor == "postgresql" else _Writer)(connection)
    applied = 0
    for generation in generations:
        advanced = writer.upsert_sites(generation, ordered)
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

    def upsert_sites(self, generation: int, changes: list[SiteChange]) -> set[UUID]:
        """Insert or advance the site rows; return the ids whose row changed."""
        now = self.datetime_param(timezone.now())
        advanced: set[UUID] = set()
        for chunk in _chunks(changes):
            params = []
            for change in chunk:
                params += [
                    generation,
                    self.uuid_param(change.site_id),
                    change.version,
                    change.deleted,
                    now,
                ]
            sql = (
                f"INSERT INTO {self.sites_table} "
                "(generation, site_id, version, deleted, projected_at) VALUES "
                + ",".join(["(%s, %s, %s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (generation, site_id) DO UPDATE SET"
                " version = excluded.version, deleted = excluded.deleted,"
                " projected_at = excluded.projected_at"
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
                    self.datetime_param(installed_at),
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
    """The same effects in fewer, cheaper round trips: the site upsert and the app delete
    take whole columns as arrays (``unnest``, ``ANY``), and the app rows go in by COPY."""

    def upsert_sites(self, generation: int, changes: list[SiteChange]) -> set[UUID]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {self.sites_table} "
                "(generation, site_id, version, deleted, projected_at)"
                " SELECT %s, c.site_id, c.version, c.deleted, %s"
                " FROM unnest(%s::uuid[], %s::bigint[], %s::boolean[])"
                " AS c(site_id, version, deleted) ORDER BY c.site_id"
                " ON CONFLICT (generation, site_id) DO UPDATE SET"
                " version = excluded.version, deleted = excluded.deleted,"
                " projected_at = excluded.projected_at"
                f" WHERE {self.sites_table}.version < excluded.version"
                " RETURNING site_id",
                [
                    generation,
                    timezone.now(),
                    [change.site_id for change in changes],
                    [change.version for change in changes],
                    [change.deleted for change in changes],
                ],
            )
            return {row[0] for row in cursor.fetchall()}

    def replace_apps(self, generation: int, changes: list[SiteChange]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {self.apps_table}"
                " WHERE generation = %s AND site_id = ANY(%s::uuid[])",
                [generation, [change.site_id for change in changes]],
            )
            # COPY is PostgreSQL's bulk path: no per-row statement or parameter handling.
            # Its errors are wrapped like any query's, so an outage is still retried.
            with (
                self.connection.wrap_database_errors,
                cursor.cursor.copy(
                    f"COPY {self.apps_table}"
                    " (generation, site_id, app_id, installed_at, site_version) FROM STDIN"
                ) as copy,
            ):
                for change in changes:
                    if change.deleted:
                        continue
                    for app_id, installed_at in change.apps:
                        copy.write_row(
                            (generation, change.site_id, app_id, installed_at, change.version)
                        )


def _chunks(items: list) -> Iterable[list]:
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        yield items[start : start + ROWS_PER_STATEMENT]


def _as_uuid(value) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
