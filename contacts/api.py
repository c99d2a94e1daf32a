"""``/api/contacts``: imports (start, list, status, failed rows), contacts, channels."""

import uuid
from datetime import datetime
from functools import wraps

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.decorators import decorate_view
from ninja.errors import HttpError
from ninja.files import UploadedFile
from ninja.pagination import PageNumberPagination, paginate
from pydantic import field_validator

from eventplatform.errors import LimitExceeded, responses
from eventplatform.notifications.tokens import ChannelRefused, issue_channel
from eventplatform.server_limits import body_too_large

from .failed_rows import NoRefusedRows, failed_rows_filename, open_failed_rows
from .models import ImportJob
from .protocol import PROGRESS_PROTOCOL
from .retention import upload_gone_reason
from .selectors import contacts_of, import_of, import_status, imports_of, row_errors_of
from .upload import (
    UploadTooLarge,
    create_import_job,
    max_upload_bytes,
    max_upload_request_bytes,
)

router = Router()


class ImportAccepted(Schema):
    job_id: uuid.UUID


class ImportOut(Schema):
    id: uuid.UUID
    file: str = Field(description="the uploaded file's name")
    status: str = Field(description="queued, importing, completed or failed")
    created_at: datetime
    completed_at: datetime | None
    total_rows: int | None = Field(description="data rows in the file; null until read")
    processed_rows: int = Field(description="rows imported, updated or refused so far")
    imported: int
    updated: int
    failed: int = Field(description="rows refused (see row_errors)")
    failure: str = Field(description="why the import failed; empty unless status is failed")
    ignored_columns: list[str] = Field(description="header columns the importer does not use")
    page_url: str = Field(description="the page that follows this import")

    @staticmethod
    def resolve_file(job: ImportJob) -> str:
        return job.original_name

    @staticmethod
    def resolve_status(job: ImportJob) -> str:
        return import_status(job)

    @staticmethod
    def resolve_page_url(job: ImportJob) -> str:
        return reverse("contacts:import-job", args=[job.id])


class RowErrorOut(Schema):
    line: int = Field(description="the row's first line in the file (the header is line 1)")
    reason: str


class RowErrorPage(Schema):
    count: int = Field(description="every refused row of the import")
    page: int
    page_size: int
    items: list[RowErrorOut]


class ImportDetailOut(ImportOut):
    total_batches: int | None
    done_batches: int
    channel: str = Field(description="the notification channel the import reports to")
    row_errors: RowErrorPage
    failed_rows_url: str | None = Field(
        description="the refused rows as a CSV with an error column; null once the uploaded "
        "file was deleted (`CONTACTS_UPLOAD_RETENTION_DAYS` after the import finished)"
    )

    @staticmethod
    def resolve_row_errors(job: ImportJob) -> dict:
        return job.row_errors_page  # set by the view: one page, chosen by the query

    @staticmethod
    def resolve_failed_rows_url(job: ImportJob) -> str | None:
        return reverse("api:failed_import_rows", args=[job.id]) if job.file else None


class RowErrorsQuery(Schema):
    # Bounded so the offset it makes always fits the database's integer.
    errors_page: int = Field(1, ge=1, le=1_000_000, description="which page of row errors")
    errors_page_size: int = Field(100, ge=1, le=1000, description="row errors per page")


class BoundedPageNumberPagination(PageNumberPagination):
    class Input(PageNumberPagination.Input):
        # Bounded so the offset it makes always fits the database's integer.
        page: int = Field(1, ge=1, le=1_000_000)


class ContactSearch(Schema):
    q: str = Field("", description="only contacts whose email, name, company or phone has it")

    @field_validator("q")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        # The database cannot compare text with a NUL; no stored contact contains one.
        if "\x00" in value:
            raise ValueError("the search must not contain a NUL character")
        return value


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


def _refuse_oversize_upload(run):
    """Answer 413 from the declared ``Content-Length`` before anything reads the body.

    It runs before authentication too, since a session's CSRF check reads the form. Servers
    that read the body lazily (WSGI, the test client) are spared reading it; Daphne reads
    it all before the application runs, so there the server refuses such a body itself
    (``eventplatform.server_limits``), in the same words.
    """

    @wraps(run)
    def checked(request: HttpRequest, *args, **kwargs):
        declared, limit = request.META.get("CONTENT_LENGTH") or "0", max_upload_request_bytes()
        if declared.isdigit() and int(declared) > limit:
            return JsonResponse(body_too_large(size=int(declared), limit=limit), status=413)
        return run(request, *args, **kwargs)

    return checked


@router.post(
    "/imports",
    response=responses({202: ImportAccepted}, 400, 413, 422),
    summary="Import contacts from a CSV file; progress goes to the notification channel",
    description="400: the file or the channel is missing; 403: the channel is not yours; "
    "413: the file is over CONTACTS_IMPORT_MAX_BYTES (20 MiB by default), or the declared "
    "body is over that plus 64 KiB for the form's envelope (refused before it is read).\n"
    + PROGRESS_PROTOCOL,
    openapi_extra=_REQUIRED_PARTS,
)
@decorate_view(_refuse_oversize_upload)
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
        # The detail names the limit (CONTACTS_IMPORT_MAX_BYTES), as limit_bytes does.
        raise LimitExceeded(
            str(error), limit=max_upload_bytes(), status=413, in_bytes=True
        ) from None
    except ChannelRefused as error:
        raise HttpError(400 if not channel else 403, str(error)) from None
    return Status(202, {"job_id": job.id})


@router.get(
    "/imports",
    response=responses({200: list[ImportOut]}, 422),
    summary="The user's imports, newest first",
)
@paginate(BoundedPageNumberPagination, page_size=20)
def list_imports(request: HttpRequest):
    return imports_of(owner_id=request.auth.pk)


@router.get(
    "/imports/{job_id}",
    response=responses({200: ImportDetailOut}, 404, 422),
    summary="One import: status, totals and its row errors, a page at a time",
    description="404: no import of yours has this id.\n" + PROGRESS_PROTOCOL,
)
def get_import(request: HttpRequest, job_id: uuid.UUID, query: Query[RowErrorsQuery]):
    job = import_of(owner_id=request.auth.pk, job_id=job_id)
    size, page = query.errors_page_size, query.errors_page
    errors = row_errors_of(job)[(page - 1) * size : page * size]
    job.row_errors_page = {
        "count": job.failed,
        "page": page,
        "page_size": size,
        "items": list(errors.values("line", "reason")),
    }
    return job


@router.get(
    "/imports/{job_id}/failed-rows",
    response=responses({200: None}, 404, 409, 410, 422),
    url_name="failed_import_rows",
    summary="The import's refused rows as a CSV to fix and upload again",
    description="The rows as written in the uploaded file, under its header, with an `error` "
    "column first saying why each was refused. 404: no import of yours has this id. 409: "
    "the import failed with no row refused (its file could not be read, say), so there are "
    "no rows to give; `detail` says why. 410: the uploaded file was deleted, "
    "`CONTACTS_UPLOAD_RETENTION_DAYS` after the import finished.",
    openapi_extra={
        "responses": {
            200: {
                "description": "CSV text",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            }
        }
    },
)
def get_failed_rows(request: HttpRequest, job_id: uuid.UUID):
    job = import_of(owner_id=request.auth.pk, job_id=job_id)
    if not job.file or not job.file.storage.exists(job.file.name):
        raise HttpError(410, upload_gone_reason())
    try:
        # Opened and checked here, before the response starts: once it has, an error can
        # no longer become a status (Daphne would never answer at all).
        rows = open_failed_rows(job)
    except FileNotFoundError:  # deleted since it was looked for
        raise HttpError(410, upload_gone_reason()) from None
    except NoRefusedRows as error:
        # 409, not 404: the import exists and the address is right, but the import's
        # state (failed as a whole) means it has no refused rows; retrying will not help.
        raise HttpError(409, str(error)) from None
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{failed_rows_filename(job)}"'
    return response


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
@paginate(BoundedPageNumberPagination, page_size=50)
def list_contacts(request: HttpRequest, query: Query[ContactSearch]):
    return contacts_of(owner_id=request.auth.pk, search=query.q)
