from django.apps import AppConfig


class RuntimeAppConfig(AppConfig):
    name = "tests.runtime_app"
    label = "runtime_app"
