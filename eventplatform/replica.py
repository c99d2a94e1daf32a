"""Replication state of the projections replica: how far behind it is, and waiting for it.

The replica is a PostgreSQL hot standby in production and CI. Where the replica alias is
the primary itself (SQLite, or PostgreSQL without a replica URL) nothing lags.
"""

import time

from django.db import connections

from .routers import PROJECTIONS, PROJECTIONS_REPLICA

# Behind means WAL was received but not yet replayed; the lag is then the age of the last
# transaction replayed. After a long idle spell that overstates a fresh lag, which errs
# towards "degraded", never towards serving stale data as fresh. A standby that has
# replayed no transaction since it started counts from its start.
_LAG_SECONDS = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0
    WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
    ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - COALESCE(
        pg_last_xact_replay_timestamp(), pg_postmaster_start_time())))
END
"""


def lag_seconds(*, alias: str = PROJECTIONS_REPLICA) -> float:
    """Seconds of replay lag of the replica behind its primary (0 when not a standby)."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute(_LAG_SECONDS)
        return float(cursor.fetchone()[0])


def reset_after_failure(*, alias: str = PROJECTIONS_REPLICA) -> None:
    """Drop the alias's connection after it failed, so its next use connects afresh.

    Django would drop it when the request ends, but only where the request-finished signal
    runs (not under the test client, nor outside requests), and the replica connection
    skips the health check that would otherwise notice a dead one.
    """
    connections[alias].close()


def is_standby(*, alias: str = PROJECTIONS_REPLICA) -> bool:
    """Whether the alias is a PostgreSQL server in recovery (a hot standby)."""
    if connections[alias].vendor != "postgresql":
        return False
    with connections[alias].cursor() as cursor:
        return _in_recovery(cursor)


def _in_recovery(cursor) -> bool:
    cursor.execute("SELECT pg_is_in_recovery()")
    return cursor.fetchone()[0]


def primary_position(
    *, primary: str = PROJECTIONS, replica: str = PROJECTIONS_REPLICA
) -> str | None:
    """Where the primary's log ends now (for :func:`has_replayed`): every transaction
    committed there so far lies before it. ``None`` where the replica alias is not a
    standby, so there is nothing to wait for."""
    if not is_standby(alias=replica):
        return None
    with connections[primary].cursor() as cursor:
        return _log_end(cursor)


def has_replayed(position: str, *, alias: str = PROJECTIONS_REPLICA) -> bool:
    """Whether the standby has replayed its primary's log up to ``position``."""
    with connections[alias].cursor() as cursor:
        return _replay_reached(cursor, position)[0]


def _log_end(cursor) -> str:
    cursor.execute("SELECT pg_current_wal_lsn()::text")
    return cursor.fetchone()[0]


def _replay_reached(cursor, position: str) -> tuple[bool, str]:
    """Whether a standby's replay reached ``position``, and where it is."""
    cursor.execute(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn, pg_last_wal_replay_lsn()::text",
        [position],
    )
    return cursor.fetchone()


def wait_for_replay(
    *,
    primary: str = PROJECTIONS,
    replica: str = PROJECTIONS_REPLICA,
    timeout: float = 30,
    maintenance_database: bool = False,
) -> None:
    """Return once the replica has replayed everything the primary has written so far.

    Tests and benchmarks call this between writing the projection and reading it back.
    ``maintenance_database`` connects to each server's ``postgres`` database instead of the
    aliases' own, which the standby may not have yet (the test run just created them).
    Raises ``TimeoutError`` if replay does not get there within ``timeout`` seconds.
    """
    if connections[replica].vendor != "postgresql":
        return

    def cursor_on(alias: str):
        connection = connections[alias]
        return connection._nodb_cursor() if maintenance_database else connection.cursor()

    with cursor_on(replica) as cursor:
        if not _in_recovery(cursor):
            return
    with cursor_on(primary) as cursor:
        target = _log_end(cursor)
    deadline = time.monotonic() + timeout
    with cursor_on(replica) as cursor:
        while True:
            replayed, position = _replay_reached(cursor, target)
            if replayed:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the replica replayed up to {position}, not {target}, within {timeout} s"
                )
            # Replay of a small transaction takes about a millisecond; poll at that pace.
            time.sleep(0.002)
