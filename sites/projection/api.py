"""Read API of the installed-apps projection (``/api/installed-apps``), replica only.

Only GET routes exist here: the projection is written by the projector alone. The replica
may lag: a client that needs at least the version it just wrote asks for it and gets 409
rather than older data; a replica that cannot be reached is a 503, both with Retry-After.
A site's document carries an ETag (its generation and version): a client that sends it back
in If-None-Match gets a bodiless 304 while the version is unchanged. Each web process keeps
the documents it served in memory until the projector announces a change
(:mod:`.document_cache`), so a kept one is also served while the replica is unreachable.
"""

import base64
import binascii
import logging
import uuid
from datetime import datetime

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.utils.http import parse_etags
from ninja import Field, Path, Query, Router, Schema
from ninja.decorators import decorate_view
from ninja.errors import HttpError, ValidationError
from pydantic import field_validator

from eventplatform import replica
from eventplatform.errors import ErrorOut, responses

from ..events import APP_ID_PATTERN
from . import document_cache, selectors
from .fast_path import uuid_path_fast_path

logger = logging.getLogger(__name__)

router = Router()

#: Replay of one projector batch takes milliseconds; a restarting replica takes seconds.
BEHIND_RETRY_AFTER_SECONDS = 1
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


class InstalledAppOut(Schema):
    app_id: str
    installed_at: datetime


class SiteAppsOut(Schema):
    site_id: uuid.UUID
    version: int = Field(description="the site version this projection reflects")
    projected_at: datetime
    apps: list[InstalledAppOut]


class SiteWithAppOut(Schema):
    site_id: uuid.UUID
    site_version: int
    installed_at: datetime


class SitesPageOut(Schema):
    items: list[SiteWithAppOut]
    next_cursor: str | None = Field(
        description="pass as ?cursor= for the next page; null at the end"
    )


#: Exactly the cursors ``_encode_cursor`` makes (base64url of b"site:" + 16 bytes, 28
#: characters), so that the schema, not only the view, says which strings are cursors.
CURSOR_PATTERN = r"^c2l0ZT[o-r][A-Za-z0-9_-]{21}$"


class PageQuery(Schema):
    cursor: str | None = Field(
        None, pattern=CURSOR_PATTERN, description="opaque cursor from the previous page"
    )
    limit: int = Field(100, ge=1, le=500)

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, cursor: str | None) -> str | None:
        if cursor is not None:
            _decode_cursor(cursor)
        return cursor


class ReplicaBehindOut(ErrorOut):
    version: int | None = Field(
        description="the version the replica has (null: it has not seen the site yet)"
    )
    min_version: int


class ReplicaUnavailableOut(ErrorOut):
    reason: str


_MIN_VERSION_HELP = (
    "read-after-write: answer 409 (with Retry-After) rather than a version older than this"
)
#: Versions are stored as PostgreSQL bigints: none is ever above this.
_MAX_VERSION = 2**63 - 1
_MIN_VERSION_SCHEMA = {"type": "integer", "minimum": 1, "maximum": _MAX_VERSION}
_ETAG_HEADER = {
    "ETag": {
        "description": "changes with the site's version (and with a rebuild)",
        "schema": {"type": "string"},
    }
}


@router.get(
    "/sites/{site_id}",
    response={
        **responses({200: SiteAppsOut}, 404, 422),
        304: None,
        409: ReplicaBehindOut,
        503: ReplicaUnavailableOut,
    },
    summary="Apps installed on a site (from the read replica)",
    description=(
        "The replica may lag the write API by a little. A client that just wrote version N "
        "of a site passes `?min_version=N` or the header `X-Min-Version: N` (both given: the "
        "higher counts) and gets that version or newer, or a 409 naming the version the "
        "replica has, to retry after `Retry-After` seconds. 503: the replica is unreachable. "
        "A client holding a document sends its `ETag` in `If-None-Match` and gets a 304 "
        "without a body while the site's version is the same."
    ),
    # Declared here and read by hand below: as ninja Query/Header parameters they would
    # cost the hottest endpoint two pydantic validations on every request.
    openapi_extra={
        "parameters": [
            {
                "in": "query",
                "name": "min_version",
                "required": False,
                "schema": _MIN_VERSION_SCHEMA,
                "description": _MIN_VERSION_HELP,
            },
            {
                "in": "header",
                "name": "X-Min-Version",
                "required": False,
                "schema": _MIN_VERSION_SCHEMA,
                "description": f"{_MIN_VERSION_HELP} (same as ?min_version)",
            },
            {
                "in": "header",
                "name": "If-None-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "ETags of documents held: 304 if the current one is among them",
            },
        ],
        "responses": {200: {"headers": _ETAG_HEADER}, 304: {"headers": _ETAG_HEADER}},
    },
)
@decorate_view(uuid_path_fast_path("site_id"))
def site_apps(request, site_id: uuid.UUID):
    # Most reads carry no query string: parsing an empty one into request.GET is skipped.
    query = request.GET.get("min_version") if request.META.get("QUERY_STRING") else None
    wanted = max(
        _min_version(query, ("query", "min_version")),
        _min_version(request.META.get("HTTP_X_MIN_VERSION"), ("header", "X-Min-Version")),
    )
    try:
        found = document_cache.site_document(site_id=site_id, min_version=wanted)
    except (OperationalError, InterfaceError) as error:
        return _replica_unavailable(error)
    if wanted and (found is None or found.version < wanted):
        return JsonResponse(
            {
                "detail": f"the read replica has not caught up with version {wanted} of this "
                "site yet; retry",
                "version": None if found is None else found.version,
                "min_version": wanted,
            },
            status=409,
            headers={"Retry-After": str(BEHIND_RETRY_AFTER_SECONDS)},
        )
    if found is None or found.document is None:
        raise HttpError(404, f"site {site_id} is not in the projection")
    # The hottest path of the read side: the document is served as the projector stored
    # it, since validating our own output against SiteAppsOut (which documents it) would
    # cost about as much as the query. A test checks that the two agree.
    headers = {"ETag": found.etag}
    if _held(request.META.get("HTTP_IF_NONE_MATCH"), headers["ETag"]):
        return HttpResponseNotModified(headers=headers)
    return HttpResponse(found.document, content_type="application/json", headers=headers)


def _held(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names ``etag`` (compared weakly, as the header is) or is ``*``."""
    if not if_none_match:
        return False
    held = parse_etags(if_none_match)
    return "*" in held or etag in (tag.removeprefix("W/") for tag in held)


def _min_version(raw: str | None, location: tuple[str, str]) -> int:
    """A minimum version as given (0: none asked), or a 422 in ninja's own error format."""
    if raw is None:
        return 0
    # The length first: Python refuses to read an integer of more than 4,300 digits.
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= _MAX_VERSION:
        return int(raw)
    message = f"must be an integer from 1 to {_MAX_VERSION}"
    raise ValidationError([{"type": "min_version", "loc": list(location), "msg": message}])


def _replica_unavailable(error: Exception) -> JsonResponse:
    replica.reset_after_failure()
    logger.warning("read replica unavailable: %s", error)
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return JsonResponse(
        {"detail": "the read replica is unavailable; retry later", "reason": reason[:200]},
        status=503,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


@router.get(
    "/apps/{app_id}/sites",
    response={**responses({200: SitesPageOut}, 422), 503: ReplicaUnavailableOut},
    summary="Sites that have an app installed, keyset-paginated (from the read replica)",
)
def sites_with_app(
    request, page: Query[PageQuery], app_id: str = Path(..., pattern=APP_ID_PATTERN)
):
    after = _decode_cursor(page.cursor) if page.cursor else None
    try:
        items, more = selectors.sites_with_app(app_id=app_id, after=after, limit=page.limit)
    except (OperationalError, InterfaceError) as error:
        return _replica_unavailable(error)
    return {
        "items": items,
        "next_cursor": _encode_cursor(items[-1].site_id) if more else None,
    }


_CURSOR_PREFIX = b"site:"


def _encode_cursor(site_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + site_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("is not a cursor this API issued") from None
    if not raw.startswith(_CURSOR_PREFIX) or len(raw) != len(_CURSOR_PREFIX) + 16:
        raise ValueError("is not a cursor this API issued")
    return uuid.UUID(bytes=raw[len(_CURSOR_PREFIX) :])
