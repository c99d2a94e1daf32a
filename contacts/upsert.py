"""One statement that inserts or updates many contacts by email, counting the new ones."""

import uuid
from datetime import datetime

from django.db import connection
from django.utils import timezone

from .models import Contact
from .validation import CleanRow

COLUMNS = (
    "owner_id, email, name, phone, company, created_at, updated_at, "
    "source_job, source_line, source_job_created_at"
)


def _on_conflict(table: str) -> str:
    """Update a contact by email unless a later line wrote it: a later line of this job, or
    any line of an import uploaded after this one (ties between uploads go by job id, so
    every importer decides alike). A contact no import wrote, or one written before imports
    recorded their upload time, is updated."""
    mine, uploaded = f"{table}.source_job", f"{table}.source_job_created_at"
    return (
        f"ON CONFLICT (owner_id, email) DO UPDATE SET name = EXCLUDED.name, "
        f"phone = EXCLUDED.phone, company = EXCLUDED.company, updated_at = EXCLUDED.updated_at, "
        f"source_job = EXCLUDED.source_job, source_line = EXCLUDED.source_line, "
        f"source_job_created_at = EXCLUDED.source_job_created_at "
        f"WHERE {mine} IS NULL "
        f"OR ({mine} = EXCLUDED.source_job AND {table}.source_line < EXCLUDED.source_line) "
        f"OR ({mine} <> EXCLUDED.source_job AND ({uploaded} IS NULL "
        f"OR ({uploaded}, {mine}) < (EXCLUDED.source_job_created_at, EXCLUDED.source_job)))"
    )


def upsert_contacts(
    *, owner_id: int, job_id: uuid.UUID, job_created_at: datetime, rows: list[CleanRow]
) -> int:
    """Insert or update ``rows`` by email for ``owner_id``; return how many were new.

    Duplicates keep the last line; an earlier line of the same job, or a line of a job
    uploaded earlier, never overwrites a later one, even when its batch is imported
    afterwards. A row kept back that way counts as not new.
    """
    latest: dict[str, CleanRow] = {}
    for row in rows:
        if row.email not in latest or latest[row.email].line < row.line:
            latest[row.email] = row
    if not latest:
        return 0
    # Sorted so concurrent importers lock contact rows in one order and cannot deadlock.
    unique = [latest[email] for email in sorted(latest)]
    now = Contact._meta.get_field("created_at").get_db_prep_value(timezone.now(), connection)
    job = (
        Contact._meta.get_field("source_job").get_db_prep_value(job_id, connection),
        Contact._meta.get_field("source_job_created_at").get_db_prep_value(
            job_created_at, connection
        ),
    )
    if connection.vendor == "postgresql":
        return _upsert_postgresql(owner_id=owner_id, job=job, now=now, rows=unique)
    return _upsert_sqlite(owner_id=owner_id, job=job, now=now, rows=unique)


def _upsert_postgresql(*, owner_id: int, job: tuple, now, rows: list[CleanRow]) -> int:
    # The rows travel as one array per column: a statement of five parameters is parsed
    # and planned in a fraction of the time one with nine per row takes.
    table = Contact._meta.db_table
    sql = (
        f"INSERT INTO {table} ({COLUMNS}) "
        f"SELECT %s, email, name, phone, company, %s, %s, %s, line, %s "
        f"FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::integer[]) "
        f"AS row (email, name, phone, company, line) "
        f"{_on_conflict(table)} "
        # xmax = 0 only on a row this statement inserted.
        f"RETURNING (xmax = 0)"
    )
    params = [owner_id, now, now, *job]
    params += [[getattr(row, f) for row in rows] for f in ("email", "name", "phone", "company")]
    params.append([row.line for row in rows])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sum(1 for (inserted,) in cursor.fetchall() if inserted)


def _upsert_sqlite(*, owner_id: int, job: tuple, now, rows: list[CleanRow]) -> int:
    table = Contact._meta.db_table
    params: list = []
    for row in rows:
        params += [owner_id, row.email, row.name, row.phone, row.company, now, now]
        params += [job[0], row.line, job[1]]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    # SQLite runs one writer at a time, so counting first is exact there.
    existing = Contact.objects.filter(owner_id=owner_id, email__in=[r.email for r in rows]).count()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({COLUMNS}) VALUES {values} " + _on_conflict(table),
            params,
        )
    return len(rows) - existing
