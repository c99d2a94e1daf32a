"""One statement that inserts or updates many contacts by email, counting the new ones."""

import uuid

from django.db import connection
from django.utils import timezone

from .models import Contact
from .validation import CleanRow


def upsert_contacts(*, owner_id: int, job_id: uuid.UUID, rows: list[CleanRow]) -> int:
    """Insert or update ``rows`` by email for ``owner_id``; return how many were new.

    Duplicates keep the last line; an earlier line of the same job never overwrites a later
    one, even when its batch is imported afterwards.
    """
    latest: dict[str, CleanRow] = {}
    for row in rows:
        if row.email not in latest or latest[row.email].line < row.line:
            latest[row.email] = row
    if not latest:
        return 0
    # Sorted so concurrent importers lock contact rows in one order and cannot deadlock.
    unique = [latest[email] for email in sorted(latest)]
    now = timezone.now()
    field = Contact._meta.get_field("source_job")
    job_value = field.get_db_prep_value(job_id, connection)
    created = Contact._meta.get_field("created_at").get_db_prep_value(now, connection)
    params: list = []
    for row in unique:
        params += [owner_id, row.email, row.name, row.phone, row.company, created, created]
        params += [job_value, row.line]
    table = Contact._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(unique))
    postgres = connection.vendor == "postgresql"
    # PostgreSQL and SQLite spell "differs, NULL included" differently.
    distinct = "IS DISTINCT FROM" if postgres else "IS NOT"
    sql = (
        f"INSERT INTO {table} (owner_id, email, name, phone, company, created_at, updated_at, "
        f"source_job, source_line) VALUES {values} "
        f"ON CONFLICT (owner_id, email) DO UPDATE SET name = EXCLUDED.name, "
        f"phone = EXCLUDED.phone, company = EXCLUDED.company, updated_at = EXCLUDED.updated_at, "
        f"source_job = EXCLUDED.source_job, source_line = EXCLUDED.source_line "
        f"WHERE {table}.source_job {distinct} EXCLUDED.source_job "
        f"OR {table}.source_line < EXCLUDED.source_line"
    )
    with connection.cursor() as cursor:
        if postgres:
            # xmax = 0 only on a row this statement inserted.
            cursor.execute(sql + " RETURNING (xmax = 0)", params)
            return sum(1 for (inserted,) in cursor.fetchall() if inserted)
        # SQLite runs one writer at a time, so counting first is exact there.
        existing = Contact.objects.filter(owner_id=owner_id, email__in=list(latest)).count()
        cursor.execute(sql, params)
        return len(unique) - existing
