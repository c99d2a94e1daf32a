from django.apps import AppConfig


class EventPlatformConfig(AppConfig):
    name = "eventplatform"
    verbose_name = "Event platform"
