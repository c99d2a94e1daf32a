"""Keeps the processes of a parallel test run (pytest-xdist) out of each other's way.

Each worker gets its own test databases from pytest-django (a ``_gwN`` suffix) and its own
broker from the session fixture; this gives it its own Redis database too, since channel
groups, notification histories and document-cache announcements live there under fixed
names. It runs before the platform's settings read ``REDIS_URL``.
"""

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redis_url_of_worker(url: str, number: int) -> str:
    """``url`` moved ``number`` databases up from the one it names (0 when it names none)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = dict(parse_qsl(parts.query))
        query["db"] = str(int(query.get("db", 0)) + number)
        # Spelled by hand: urlunsplit drops the empty host of "unix://".
        return f"{url.partition('?')[0]}?{urlencode(query)}"
    database = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{database + number}"))


#: Set once this worker's ``REDIS_URL`` was moved: the processes a test starts inherit
#: both, and must use the worker's database, not move again.
MOVED_FOR = "TEST_REDIS_URL_MOVED_FOR_WORKER"


def isolate_this_worker() -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under pytest-xdist
    number = int(worker[2:]) if worker.startswith("gw") else 0
    if number and os.environ.get("REDIS_URL") and os.environ.get(MOVED_FOR) != worker:
        os.environ["REDIS_URL"] = redis_url_of_worker(os.environ["REDIS_URL"], number)
        os.environ[MOVED_FOR] = worker
