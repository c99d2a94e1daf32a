"""The REST API (django-ninja) with its OpenAPI docs at ``/api/docs``.

Each module owns a router in its ``api.py``; this file mounts them, makes authentication
the default of every operation (``/api/docs`` and ``/api/openapi.json`` stay open, as do
``/healthz`` and ``/readyz`` outside ``/api``), and maps every exception to its answer in
one place: always JSON in the ``ErrorOut`` shape, never a traceback.
"""

import json
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from .auth import api_auth, token_is_read_only
from .errors import Forbidden, LimitExceeded, NotFound, responses
from .outages import register as register_outage_handlers
from .outbox import EventTooLarge

logger = logging.getLogger(__name__)


class ObjectBodyParser(Parser):
    """Every JSON body of this API is an object: ``null`` or a list is a malformed body
    (400), never an empty change. NaN/Infinity parse, so the service can answer 422."""

    def parse_body(self, request: HttpRequest) -> dict:
        data = json.loads(request.body)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data


api = NinjaAPI(
    parser=ObjectBodyParser(),
    title="Event platform",
    version="1.0",
    description=(
        "Sites, installed-apps projection, contacts imports and KV configuration. Every "
        "operation needs `Authorization: Bearer <token>` (`manage.py create_api_token`) or a "
        "logged-in session with its CSRF token; errors are JSON `{detail, limit?, "
        "limit_bytes?}`."
    ),
    urls_namespace="api",
    auth=api_auth,
)

api.add_router("/sites", "sites.api.router", tags=["sites"])
api.add_router("/installed-apps", "sites.projection.api.router", tags=["installed apps"])
api.add_router("/contacts", "contacts.api.router", tags=["contacts"])
api.add_router("/kv", "kvconfig.api.router", tags=["kv"])


class MeOut(Schema):
    username: str
    read_only: bool


@api.get("/me", response=responses({200: MeOut}), tags=["auth"], summary="Who I am")
def me(request) -> dict:
    """Lets a client check its token or session before doing real work."""
    return {"username": request.auth.username, "read_only": token_is_read_only(request)}


def _error(request: HttpRequest, status: int, detail, **extra) -> HttpResponse:
    return api.create_response(request, {"detail": detail, **extra}, status=status)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, error):
    response = _error(
        request, 401, "authentication required: send 'Authorization: Bearer <token>' or log in"
    )
    response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


@api.exception_handler(HttpError)
def _http_error(request, error):
    return _error(request, error.status_code, str(error))


@api.exception_handler(NinjaValidationError)
def _invalid_request(request, error):
    return _error(request, 422, error.errors)


@api.exception_handler(DjangoValidationError)
def _invalid_data(request, error):
    fields = error.message_dict if hasattr(error, "error_dict") else {"body": error.messages}
    detail = [
        {"type": "value_error", "loc": ["body", field], "msg": " ".join(messages)}
        for field, messages in fields.items()
    ]
    return _error(request, 422, detail)


@api.exception_handler(NotFound)
def _not_found(request, error):
    return _error(request, 404, str(error))


@api.exception_handler(Forbidden)
def _forbidden(request, error):
    return _error(request, 403, str(error))


@api.exception_handler(PermissionDenied)
def _permission_denied(request, error):
    return _error(request, 403, str(error) or "you may not do this")


@api.exception_handler(LimitExceeded)
def _limit_exceeded(request, error):
    key = "limit_bytes" if error.in_bytes else "limit"
    return _error(request, error.status, str(error), **{key: error.limit})


@api.exception_handler(EventTooLarge)
def _event_too_large(request, error):
    # The site's snapshot event would not fit in a Kafka record: nothing was stored.
    return _error(request, 413, str(error), limit_bytes=error.limit)


@api.exception_handler(RequestDataTooBig)
def _body_too_large(request, error):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(
        request, 413, f"the request body is over the limit of {limit:,} bytes", limit_bytes=limit
    )


@api.exception_handler(MultiPartParserError)
def _malformed_multipart(request, error):
    return _error(request, 400, f"malformed multipart body: {error}")


@api.exception_handler(SuspiciousOperation)
def _suspicious(request, error):
    # Too many fields or files, and the like: Django's own limits, refused as a bad request.
    return _error(request, 400, str(error) or "bad request")


# A database, Redis or task queue that is down: 503 with Retry-After, the same as outside.
register_outage_handlers(api)


@api.exception_handler(Exception)
def _unexpected(request, error):
    # Logged with its traceback for the operators; the client gets JSON, never the trace.
    logger.exception("unhandled error in %s %s", request.method, request.path)
    return _error(request, 500, "internal error; it has been logged")
