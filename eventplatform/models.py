"""Platform tables: the transactional outbox, stored consumer offsets, API tokens, and the
audit of what was done with dead-lettered records."""

import hashlib
import secrets

from django.conf import settings
from django.db import models


class OutboxEvent(models.Model):
    """A record to send to Kafka, written in the same transaction as the change it reports."""

    topic = models.CharField(max_length=255)
    key = models.CharField(max_length=255, blank=True, null=True)
    value = models.BinaryField(null=True)
    headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # Set when the broker refused the row for good (e.g. too large): kept, not retried,
    # until someone resends it; the rows after it flow on.
    set_aside_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            # The relay scans only unsent rows; a partial index keeps that scan tiny.
            models.Index(
                fields=["id"], name="outbox_unsent", condition=models.Q(sent_at__isnull=True)
            ),
            models.Index(fields=["sent_at"], name="outbox_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.topic}:{self.key} #{self.pk}"


class ConsumerOffset(models.Model):
    """Offsets a consumer keeps beside its effects (see ``eventplatform.kafka.offsets``)."""

    _consumer_offsets = True

    group = models.CharField(max_length=255)
    topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    next_offset = models.BigIntegerField()
    # The topic's id when stored: a topic deleted and recreated under the same name (or a
    # broker replaced) has a new id, and then the stored offset means nothing.
    topic_id = models.CharField(max_length=36, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "topic", "partition"], name="consumer_offset_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.topic}[{self.partition}]@{self.next_offset}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(models.Model):
    """A bearer token for the API; only its SHA-256 is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    # A read-only token (e.g. a service reading the installed-apps API) is refused every
    # write with 403, whatever its user may do with a session.
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Updated at most once a minute per token and process: a write on every request would
    # cost the read API its speed.
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.name or self.token_hash[:8]}"

    @classmethod
    def issue(cls, user, name: str = "", *, read_only: bool = False) -> tuple["ApiToken", str]:
        """Create a token for ``user``; returns the row and the plain token (shown once)."""
        plain = secrets.token_urlsafe(32)
        row = cls.objects.create(
            user=user, name=name, token_hash=hash_token(plain), read_only=read_only
        )
        return row, plain


class DeadLetterAction(models.Model):
    """A dead-lettered record replayed or discarded: who did it, when, and to which record.

    The row is also the record's mark: a DLQ record with a row is handled and never
    replayed again. One record, one row (the constraint), so two people replaying the same
    record at once produce it once.
    """

    REPLAY = "replay"
    DISCARD = "discard"
    ACTIONS = [(REPLAY, "replayed"), (DISCARD, "discarded")]

    dlq_topic = models.CharField(max_length=255)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    action = models.CharField(max_length=10, choices=ACTIONS)
    # A username from the admin, or ``cli:<login>`` from ``manage.py dlq``.
    actor = models.CharField(max_length=255)
    acted_at = models.DateTimeField(auto_now_add=True)
    key = models.TextField(blank=True, default="")
    # Where the record failed (``topic[partition]@offset``) and why, as its headers said.
    source = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")
    # Where a replayed record went (``topic[partition]@offset``).
    replayed_to = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dlq_topic", "partition", "offset"], name="dead_letter_action_once"
            ),
        ]
        indexes = [models.Index(fields=["-acted_at"], name="dead_letter_action_recent")]

    def __str__(self) -> str:
        return f"{self.action} {self.dlq_topic}[{self.partition}]@{self.offset} by {self.actor}"
