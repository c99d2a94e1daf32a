"""Test settings: the platform's, plus a small app whose consumer exercises the runtime."""

from eventplatform.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.runtime_app"]  # noqa: F405
