from django.apps import AppConfig


class KVConfigConfig(AppConfig):
    name = "kvconfig"
    verbose_name = "KV configuration"
