"""``/api/contacts``: start an import, list the user's contacts, get a notification channel."""

import uuid

from django.http import HttpRequest
from ninja import File, Form, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.pagination import PageNumberPagination, paginate

from eventplatform.errors import responses
from eventplatform.notifications.tokens import ChannelRefused, issue_channel

from .selectors import contacts_of
from .services import UploadTooLarge, create_import_job

router = Router()


class ImportAccepted(Schema):
    job_id: uuid.UUID


class ChannelOut(Schema):
    channel: str


class ContactOut(Schema):
    email: str
    name: str
    phone: str
    company: str


# Both parts are required; the view answers their absence itself with a 400 that says
# which one is missing (ninja would answer a generic 422), so the schema says so here.
_REQUIRED_PARTS = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "required": ["file", "channel"],
                    "properties": {"channel": {"minLength": 1}},
                }
            }
        },
    }
}


@router.post(
    "/imports",
    response=responses({202: ImportAccepted}, 400, 413, 422),
    summary="Import contacts from a CSV file; progress goes to the notification channel",
    description="400: the file or the channel is missing; 403: the channel is not yours; "
    "413: the file is over CONTACTS_IMPORT_MAX_BYTES (20 MiB by default).",
    openapi_extra=_REQUIRED_PARTS,
)
def create_import(
    request: HttpRequest,
    file: File[UploadedFile] = None,
    channel: Form[str] = None,
):
    if file is None:
        raise HttpError(400, "choose a CSV file to upload (multipart field 'file')")
    try:
        job = create_import_job(owner=request.auth, upload=file, channel=channel)
    except UploadTooLarge as error:
        # The detail names the limit (CONTACTS_IMPORT_MAX_BYTES).
        raise HttpError(413, str(error)) from None
    except ChannelRefused as error:
        raise HttpError(400 if not channel else 403, str(error)) from None
    return Status(202, {"job_id": job.id})


@router.post(
    "/channels",
    response=responses({201: ChannelOut}),
    summary="Issue a notification channel",
)
def create_channel(request: HttpRequest):
    return Status(201, {"channel": issue_channel(user_id=request.auth.pk)})


@router.get(
    "",
    response=responses({200: list[ContactOut]}, 422),
    summary="The user's contacts, searchable",
)
@paginate(PageNumberPagination, page_size=50)
def list_contacts(request: HttpRequest, q: str = ""):
    return contacts_of(owner_id=request.auth.pk, search=q)
