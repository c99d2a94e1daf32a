"""Shared set-up for benchmarks: Django, a broker, an isolated topic prefix, timing helpers.

Run a benchmark as ``.venv/bin/python -m bench.NAME``. It uses the databases and Redis of
the environment (``DATABASE_URL`` etc.; PostgreSQL is what the figures are meant for) and
starts an embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set. Benchmarks print
ratios against a baseline measured in the same run, because absolute times on a shared
machine mean little.
"""

import contextlib
import os
import statistics
import time
import uuid

#: What the figures were measured on, printed with every report.
BROKER = ""

#: Production settings (DEBUG off: no per-query log, no debug pages), minus what needs a
#: TLS proxy in front, since benchmarks talk plain HTTP to 127.0.0.1.
PRODUCTION_OVER_LOOPBACK = {
    "DEBUG": "false",
    "SECRET_KEY": f"bench-{uuid.uuid4().hex}",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "SECURE_PROXY_SSL_HEADER": "off",
}


def _create_missing_databases() -> None:
    """CREATE DATABASE for each PostgreSQL URL in the environment that names a missing one."""
    from urllib.parse import urlparse

    for variable in ("DATABASE_URL", "PROJECTIONS_DATABASE_URL"):
        url = urlparse(os.environ.get(variable, ""))
        if url.scheme not in ("postgres", "postgresql") or not url.path.strip("/"):
            continue
        import psycopg

        name = url.path.strip("/")
        maintenance = (
            url._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
        )
        with psycopg.connect(maintenance, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
                print(f"created database {name}")


#: Every topic prefix this run used: their topics are deleted when it ends.
_PREFIXES: list[str] = []


def new_topic_prefix() -> str:
    """Point this process (and the processes it starts next) at topics of a new prefix,
    deleted with the others when the benchmark ends."""
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    _PREFIXES.append(prefix)
    os.environ["KAFKA_TOPIC_PREFIX"] = prefix
    return prefix


@contextlib.contextmanager
def benchmark_environment(*, migrate: bool = True):
    """Start a broker if needed, set a fresh topic prefix, set up Django and its databases.

    On a broker of its own (``KAFKA_BOOTSTRAP_SERVERS``) the run's topics are deleted at
    the end: a broker that keeps every run's topics grows slower with each run.
    """
    global BROKER
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
    os.environ.update(PRODUCTION_OVER_LOOPBACK)
    new_topic_prefix()
    _create_missing_databases()
    broker = None
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        BROKER = f"Kafka at {os.environ['KAFKA_BOOTSTRAP_SERVERS']}"
    else:
        from eventplatform.embedded.broker import EMBEDDED_BROKER_ENV, EmbeddedBroker

        broker = EmbeddedBroker().start()
        os.environ.update(EMBEDDED_BROKER_ENV, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers)
        BROKER = "the embedded broker (Tansu)"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    if migrate:
        for database in ("default", "projections"):
            call_command("migrate", database=database, verbosity=0, fake_initial=True)
    from eventplatform.kafka.topics import ensure_topics

    ensure_topics()
    try:
        yield
    finally:
        from eventplatform.kafka.producer import close_producer
        from eventplatform.kafka.topics import delete_topics_with_prefix

        close_producer()
        if broker:
            broker.stop()  # its topics go with it
        else:
            for prefix in _PREFIXES:
                try:
                    delete_topics_with_prefix(prefix)
                except Exception as error:  # reported, not raised over the run's own error
                    print(f"note: topics {prefix}* not deleted: {error}")


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self) -> "Timer":
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.started


def empty_tables(*models, using: str = "default") -> None:
    """Empty the tables of ``models`` on ``using``: TRUNCATE on PostgreSQL, so the previous
    run's dead rows are not vacuumed while the next run is being timed (taking a core from
    the side that uses the database, never from a baseline that does not)."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        for model in models:
            model.objects.using(using).all().delete()
        return
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(model._meta.db_table for model in models))


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of ``samples``."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[int(q) - 1]


def report(title: str, rows: dict[str, str]) -> None:
    rows = {**rows, "broker": BROKER or "none"}
    width = max(len(k) for k in rows)
    print(f"\n{title}")
    for key, value in rows.items():
        print(f"  {key:<{width}}  {value}")
