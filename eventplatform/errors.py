"""The API's one error schema and the exceptions services raise to mean an HTTP answer.

Services raise these (or Django's ``ValidationError``/``PermissionDenied``); the single
mapping to status codes lives in ``eventplatform.api``. Every error body is an ``ErrorOut``:
``detail`` always, and the limit that was exceeded when a bound refused the request.
"""

from typing import Any

from ninja import Field, Schema


class ErrorOut(Schema):
    """Every error the API answers (401, 403, 404, 409, 413, 414, 422, 503...)."""

    detail: str | list[dict[str, Any]] = Field(
        description="what went wrong: a sentence, or for 422 a list of {type, loc, msg}"
    )
    limit: int | None = Field(
        None, description="the bound that refused the request (count or bytes, as detail says)"
    )
    limit_bytes: int | None = Field(None, description="for 413: the size limit in bytes")


class NotFound(LookupError):
    """The thing named in the URL does not exist (404)."""


class Forbidden(Exception):
    """The caller is authenticated but may not do this (403)."""


class LimitExceeded(Exception):
    """A stated bound refused the request; ``status`` is 409 (a count) or 413 (a size)."""

    def __init__(self, message: str, *, limit: int, status: int, in_bytes: bool = False):
        super().__init__(message)
        self.limit, self.status, self.in_bytes = limit, status, in_bytes


#: Statuses any authenticated operation may answer besides its own.
AUTH_ERRORS = (401, 403, 414)
#: Statuses an operation with a JSON body may answer besides its own (400: not a JSON
#: object, 413: over DATA_UPLOAD_MAX_MEMORY_SIZE, 422: invalid fields).
BODY_ERRORS = (400, 413, 422)


def responses(ok: dict[int, Any], *statuses: int) -> dict[int, Any]:
    """A ninja ``response=`` mapping: the successes given, then each status as ``ErrorOut``."""
    return {**ok, **{status: ErrorOut for status in sorted({*AUTH_ERRORS, *statuses})}}
