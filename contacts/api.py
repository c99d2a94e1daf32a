"""``/api/contacts``: start an import, list the user's contacts, get a notification channel."""

import uuid

from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.pagination import PageNumberPagination, paginate

from eventplatform.auth import api_auth
from eventplatform.notifications.tokens import ChannelRefused, issue_channel

from .selectors import contacts_of
from .services import UploadTooLarge, create_import_job

router = Router(auth=api_auth)


class Problem(Schema):
    detail: str


class ImportAccepted(Schema):
    job_id: uuid.UUID


class ChannelOut(Schema):
    channel: str


class ContactOut(Schema):
    email: str
    name: str
    phone: str
    company: str


@router.post(
    "/imports",
    response={202: ImportAccepted, 400: Problem, 403: Problem, 413: Problem},
    summary="Import contacts from a CSV file; progress goes to the notification channel",
)
def create_import(
    request: HttpRequest,
    file: File[UploadedFile] = None,
    channel: Form[str] = None,
):
    if file is None:
        return Status(400, {"detail": "choose a CSV file to upload (multipart field 'file')"})
    try:
        job = create_import_job(owner=request.auth, upload=file, channel=channel)
    except UploadTooLarge as error:
        return Status(413, {"detail": str(error)})
    except ChannelRefused as error:
        return Status((400 if not channel else 403), {"detail": str(error)})
    return Status(202, {"job_id": job.id})


@router.post("/channels", response={201: ChannelOut}, summary="Issue a notification channel")
def create_channel(request: HttpRequest):
    return Status(201, {"channel": issue_channel(user_id=request.auth.pk)})


@router.get("", response=list[ContactOut], summary="The user's contacts, searchable")
@paginate(PageNumberPagination, page_size=50)
def list_contacts(request: HttpRequest, q: str = ""):
    return contacts_of(owner_id=request.auth.pk, search=q)
