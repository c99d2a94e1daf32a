"""Contacts reads: a user's contacts, a user's imports and their row errors."""

import uuid

from django.db.models import Q, QuerySet

from eventplatform.errors import NotFound

from .models import Contact, ImportJob, ImportRowError


def contacts_of(*, owner_id: int, search: str = "") -> QuerySet[Contact]:
    """The owner's contacts by email, narrowed to those whose fields contain ``search``."""
    contacts = Contact.objects.filter(owner_id=owner_id).order_by("email")
    search = search.strip()
    if "\x00" in search:
        # No stored text holds a NUL (PostgreSQL refuses it, even in a comparison).
        return contacts.none()
    if search:
        contacts = contacts.filter(
            Q(email__icontains=search)
            | Q(name__icontains=search)
            | Q(company__icontains=search)
            | Q(phone__icontains=search)
        )
    return contacts


def imports_of(*, owner_id: int) -> QuerySet[ImportJob]:
    """The owner's import jobs, newest first."""
    return ImportJob.objects.filter(owner_id=owner_id).order_by("-created_at", "-id")


def import_of(*, owner_id: int, job_id: uuid.UUID | str) -> ImportJob:
    """The owner's import job ``job_id``; :class:`NotFound` if it is not theirs or unknown."""
    job = ImportJob.objects.filter(owner_id=owner_id, id=job_id).first()
    if job is None:
        raise NotFound("no such import")
    return job


def row_errors_of(job: ImportJob) -> QuerySet[ImportRowError]:
    """The job's refused rows in file order."""
    return job.row_errors.order_by("line")


def import_status(job: ImportJob) -> str:
    """``queued`` (file not read yet), ``importing``, ``completed`` or ``failed``."""
    if job.failure:
        return "failed"
    if job.completed_at:
        return "completed"
    return "queued" if job.total_batches is None else "importing"
