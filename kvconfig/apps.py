from django.apps import AppConfig


class KVConfigConfig(AppConfig):
    name = "kvconfig"
    verbose_name = "KV configuration"

    def ready(self):
        from . import metrics  # noqa: F401 - registers the KV gauges with /metrics
