"""Contacts, import jobs and the bookkeeping that makes an import exactly-once.

``ImportJob`` holds what the importers need to count each batch once and to send
``completed`` once (totals, done batches, counters); the status API and the import page read
it too, with the job's ``ImportRowError`` rows.
"""

import uuid

from django.conf import settings
from django.db import models

EMAIL_MAX_LENGTH = 254
NAME_MAX_LENGTH = 200
PHONE_MAX_LENGTH = 50
COMPANY_MAX_LENGTH = 200


class Contact(models.Model):
    """One contact of one owner; the email (lower-case) is unique per owner."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contacts"
    )
    email = models.CharField(max_length=EMAIL_MAX_LENGTH)
    name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    phone = models.CharField(max_length=PHONE_MAX_LENGTH, blank=True)
    company = models.CharField(max_length=COMPANY_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Which import line wrote this row last, and when that import was uploaded: a batch
    # processed out of order (late, redelivered, replayed from the dead-letter topic) must
    # not let an earlier line of the same file, or any line of an import uploaded earlier,
    # overwrite a later one (the last upload, then its last line, wins).
    source_job = models.UUIDField(null=True, blank=True)
    source_line = models.IntegerField(null=True, blank=True)
    source_job_created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "email"], name="contact_owner_email"),
        ]
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class ImportJob(models.Model):
    """One uploaded file and its exactly-once counters."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_imports"
    )
    file = models.FileField(upload_to="contact-imports/%Y/%m/%d/")
    original_name = models.CharField(max_length=255, blank=True)
    channel = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    total_rows = models.IntegerField(null=True, blank=True)
    total_batches = models.IntegerField(null=True, blank=True)
    done_batches = models.IntegerField(default=0)
    imported = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    failure = models.TextField(blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Batches the split has produced for certain: a split that runs again resumes here.
    produced_batches = models.IntegerField(default=0)
    # Last sign of life (created, planned, batches produced or imported); the sweeper
    # re-dispatches a silent split and fails a job silent for too long.
    progressed_at = models.DateTimeField(null=True, blank=True)
    # Header columns the importer does not use, as written in the file (set when planned).
    ignored_columns = models.JSONField(default=list, blank=True)
    # Where its batches went: the highest offset of each partition (as a string) the split
    # produced one to. Once the importers have read past all of them, a job still
    # incomplete will never be (its batches were dead-lettered or skipped); until then,
    # silence only means its batches are queued behind others'. This field and the next
    # have database defaults too: processes of an earlier release, which know neither,
    # keep inserting jobs while a rolling deploy runs.
    batch_offsets = models.JSONField(
        default=dict, blank=True, db_default=models.Value({}, output_field=models.JSONField())
    )
    # The id of the topic those offsets are in: a topic deleted and created again under the
    # same name is a new log, which holds none of the job's batches ("" if the broker
    # gives no ids, or the split ran before they were recorded).
    batch_topic_id = models.CharField(max_length=64, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="import_job_owner_recent"),
            # The retention sweep looks only at imports still holding their upload, a few
            # days' worth, however many imports the table keeps.
            models.Index(
                fields=["created_at"], name="import_job_upload_kept", condition=~models.Q(file="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_name or self.file.name} ({self.id})"

    @property
    def processed_rows(self) -> int:
        """Rows imported, updated or refused so far."""
        return self.imported + self.updated + self.failed


class ImportedBatch(models.Model):
    """A batch whose rows are applied; inserted in the same transaction as the upserts."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="batches")
    batch_no = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "batch_no"], name="imported_batch_once"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.batch_no}"


class ImportRowError(models.Model):
    """A row of an import that was not imported: its first line in the file and why."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.IntegerField()
    reason = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "line"], name="import_row_error_once"),
        ]
        ordering = ["line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
