"""Keeps the tests that stop the shared hot standby, or pause its replay, apart from every
other test that may read it.

Every test worker (and every test session on the machine) reads the one standby of
``.ci/standby``. A test that stops it would make a read API test on another worker answer
503; one that pauses its replay would leave another's read-after-write waiting. So each
test holds a lock on the standby: shared by default, exclusive for the tests that take the
``standby`` fixture. A waiting exclusive holder goes first (it holds the turnstile that
each shared holder passes through), so the other worker's stream of tests cannot starve it.
"""

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit


def _lock_base(replica_url: str) -> Path:
    """One lock per standby server, whatever database or user a session names on it."""
    parts = urlsplit(replica_url)
    server = f"{parts.hostname or 'local'}-{parts.port or 5432}"
    return Path(tempfile.gettempdir()) / f"eventplatform-standby-{server}"


@contextlib.contextmanager
def standby_access(*, exclusive: bool) -> Iterator[None]:
    """Hold the standby shared, or alone, for the length of the block; nothing to hold
    where no standby serves the replica alias (SQLite, or a replica that is the primary)."""
    replica_url = os.environ.get("PROJECTIONS_REPLICA_DATABASE_URL", "")
    if not replica_url.startswith("postgres"):
        yield
        return
    base = _lock_base(replica_url)
    with open(f"{base}.turnstile", "a") as turnstile, open(f"{base}.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(lock, fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH)
            finally:
                fcntl.flock(turnstile, fcntl.LOCK_UN)
        yield  # closing the files releases both locks
