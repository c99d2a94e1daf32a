"""Settings for ``bench.read_api``: the platform's, plus a bare JSON view to compare with."""

from eventplatform.settings import *  # noqa: F403

ROOT_URLCONF = "bench.read_api_urls"
