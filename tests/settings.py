"""Test settings: the platform's, plus a small app whose consumer exercises the runtime."""

from tests.worker_isolation import isolate_this_worker

isolate_this_worker()

from eventplatform.settings import *  # noqa: E402, F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.runtime_app"]  # noqa: F405

# Fast group joins and fetches on either broker: tests start and stop many consumers.
KAFKA_SESSION_TIMEOUT_MS = int(env("KAFKA_SESSION_TIMEOUT_MS", "6000"))  # noqa: F405
KAFKA_HEARTBEAT_INTERVAL_MS = int(env("KAFKA_HEARTBEAT_INTERVAL_MS", "1000"))  # noqa: F405
KAFKA_FETCH_MAX_WAIT_MS = int(env("KAFKA_FETCH_MAX_WAIT_MS", "100"))  # noqa: F405
