"""A contact held in an open transaction, so that an import cannot end before a test says.

Some tests strike "mid-import" (a restart, an outage, a lost history); an import of 20,000
rows takes under a second here, so waiting for a first sign of progress and then striking
is a race the import can win. An importer upserting the held email waits for the holding
transaction instead, and the test strikes once it sees the importer waiting.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg

from contacts.models import Contact


@contextmanager
def contact_held_uncommitted(database_url: str, owner_id: int, email: str) -> Iterator[int]:
    """Insert ``email``'s contact and neither commit nor roll back until the block ends.

    Rolled back, the importer's row goes in as new, so it counts as imported. Yields the
    holding backend's pid.
    """
    with psycopg.connect(database_url, connect_timeout=10) as holder:
        try:
            holder.execute(
                f"INSERT INTO {Contact._meta.db_table} (owner_id, email, name, phone, company,"
                " created_at, updated_at) VALUES (%s, %s, '', '', '', now(), now())",
                [owner_id, email],
            )
            yield holder.info.backend_pid
        finally:
            # A server that stopped inside the block ended the transaction itself.
            with suppress(psycopg.OperationalError):
                holder.rollback()


def backends_waiting_on(connection, pid: int) -> int:
    """How many backends wait for a lock ``pid`` holds (``connection``: Django's or psycopg's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        )
        return cursor.fetchone()[0]
