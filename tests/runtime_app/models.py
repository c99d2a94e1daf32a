from django.db import models


class AppliedRecord(models.Model):
    """One row per record a test consumer applied, so tests can count effects exactly."""

    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    value = models.TextField()
    applied_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"
