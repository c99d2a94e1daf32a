"""The KV editor's permissions. The entries themselves live in Kafka, not in a table."""

from django.db import models


class Configuration(models.Model):
    """No table: the holder of the two permissions the KV editor checks, so an operator can
    grant reading the configuration without granting changing it, the way model permissions
    work everywhere else in the admin."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_configuration", "Can view the KV configuration"),
            ("change_configuration", "Can add, change and delete KV entries"),
        ]

    def __str__(self) -> str:
        return "KV configuration"
