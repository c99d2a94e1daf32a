"""Shared fixtures: one broker per session, a unique topic prefix per test, subprocesses
that see the test databases.

Tests that need Kafka ask for ``kafka`` (the declared topics exist under this test's
prefix), or ``kafka_without_topics`` when the test creates them itself; either deletes the
prefix's topics afterwards. Tests that run commands in other processes use ``manage`` /
``spawn_manage``, whose environment points at the same test databases, broker, Redis and
prefix.
"""

import contextlib
import gc
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from eventplatform.embedded.broker import EMBEDDED_BROKER_ENV, EmbeddedBroker
from eventplatform.kafka.producer import reset_producer
from eventplatform.kafka.shared_admin import close_shared_admin
from eventplatform.kafka.topics import delete_topics_with_prefix, ensure_topics
from eventplatform.replica import wait_for_replay
from kvconfig import stores as kv_store

from .standby_access import standby_access

ROOT = Path(__file__).resolve().parent.parent
EXTERNAL_KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")


@pytest.fixture(scope="session")
def kafka_broker():
    """The session's broker: the one in ``KAFKA_BOOTSTRAP_SERVERS``, else an embedded one."""
    if EXTERNAL_KAFKA:
        yield EXTERNAL_KAFKA
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    log_name = f"test-broker{'-' + worker if worker else ''}.log"
    broker = EmbeddedBroker(log_path=Path(settings.VAR_DIR) / log_name)
    Path(settings.VAR_DIR).mkdir(parents=True, exist_ok=True)
    broker.start()
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.bootstrap_servers
    settings.KAFKA_SHORT_HIGH_WATERMARK = True
    os.environ.update(EMBEDDED_BROKER_ENV, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap_servers)
    reset_producer()
    yield broker
    # Close every client first, so none keeps reconnecting (and logging) after the broker went.
    reset_producer()
    close_shared_admin()
    kv_store.shutdown()
    broker.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Wait until a standby replica has the new test databases; close every connection (the
    replica mirror too) before the test databases are dropped."""
    with django_db_blocker.unblock():
        wait_for_replay(maintenance_database=True)
    yield
    with django_db_blocker.unblock():
        connections.close_all()
    _close_connections_left_by_other_threads()


def _close_connections_left_by_other_threads() -> None:
    """``close_all`` reaches this thread's connections only. A query run in another thread
    or async context (a websocket consumer's, say) can leave one open that nothing will
    close, and the test databases cannot be dropped while any session uses them."""
    for wrapper in gc.get_objects():
        # type(), not isinstance(): isinstance asks for __class__, which makes a lazy
        # object left over from a request (its user, say) load itself from the database.
        if issubclass(type(wrapper), BaseDatabaseWrapper) and wrapper.connection is not None:
            with contextlib.suppress(Exception):  # closing is all that is wanted of it
                wrapper.connection.close()


@pytest.fixture(autouse=True)
def standby_held(request):
    """Each test holds the shared hot standby: alone if it takes the ``standby`` fixture
    (it stops the standby or pauses its replay), else beside every other reader."""
    with standby_access(exclusive="standby" in request.fixturenames):
        yield


@pytest.fixture(autouse=True)
def topic_prefix(settings):
    """Every test gets its own topics and consumer groups."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings.KAFKA_TOPIC_PREFIX = prefix
    return prefix


@pytest.fixture
def kafka_without_topics(kafka_broker, topic_prefix):
    """The broker, with no topic created for this test; every topic the test creates under
    its prefix (itself or through a command) is deleted afterwards.

    A disk-backed broker keeps topics across sessions, so without this each run would
    leave more behind.
    """
    yield kafka_broker
    # Stop every client that follows these topics before they go, or it keeps asking for
    # them (and logging errors) through the rest of the session.
    kv_store.shutdown()
    reset_producer()
    delete_topics_with_prefix(topic_prefix)


@pytest.fixture
def kafka(kafka_without_topics):
    """The broker, with every declared topic created under this test's prefix (and deleted
    afterwards)."""
    ensure_topics()
    return kafka_without_topics


def _database_url(alias: str) -> str:
    config = connections[alias].settings_dict
    if config["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{config['HOST']}:{config['PORT']}/{config['NAME']}"


@pytest.fixture
def subprocess_env(kafka_broker, topic_prefix):
    """Environment for child processes: the test databases, broker, Redis and prefix."""
    return dict(
        os.environ,
        DATABASE_URL=_database_url("default"),
        PROJECTIONS_DATABASE_URL=_database_url("projections"),
        PROJECTIONS_REPLICA_DATABASE_URL=_database_url("projections_replica"),
        KAFKA_BOOTSTRAP_SERVERS=settings.KAFKA_BOOTSTRAP_SERVERS,
        KAFKA_TOPIC_PREFIX=topic_prefix,
        REDIS_URL=settings.REDIS_URL,
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONUNBUFFERED="1",
    )


@pytest.fixture
def spawn_manage(subprocess_env, tmp_path):
    """Start ``manage.py ARGS`` in the background; every process is killed after the test."""
    processes: list[subprocess.Popen] = []

    def spawn(*args: str, env: dict | None = None) -> subprocess.Popen:
        log = open(tmp_path / f"{args[0]}-{len(processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**subprocess_env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log.name
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()


@pytest.fixture
def manage(subprocess_env):
    """Run ``manage.py ARGS`` to completion in another process; returns the result."""

    def run(*args: str, timeout: float = 120, check: bool = True, **kwargs):
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=subprocess_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
        if check and result.returncode:
            raise AssertionError(f"manage.py {args} failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run
