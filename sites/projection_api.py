"""Read API of the installed-apps projection (``/api/installed-apps``), replica only.

Only GET routes exist here: the projection is written by the projector alone.
"""

import base64
import binascii
import uuid
from datetime import datetime

from django.http import HttpResponse
from ninja import Field, Path, Query, Router, Schema
from ninja.errors import HttpError
from pydantic import field_validator

from .events import APP_ID_PATTERN
from .projection import selectors

router = Router()


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


class PageQuery(Schema):
    cursor: str | None = Field(None, description="opaque cursor from the previous page")
    limit: int = Field(100, ge=1, le=500)

    @field_validator("cursor")
    @classmethod
    def _cursor_is_ours(cls, cursor: str | None) -> str | None:
        if cursor is not None:
            _decode_cursor(cursor)
        return cursor


class ErrorOut(Schema):
    detail: str


@router.get(
    "/sites/{site_id}",
    response={200: SiteAppsOut, 404: ErrorOut},
    summary="Apps installed on a site (from the read replica)",
)
def site_apps(request, site_id: uuid.UUID):
    document = selectors.site_apps_document(site_id=site_id)
    if document is None:
        raise HttpError(404, f"site {site_id} is not in the projection")
    # The hottest path of the read side: the document is passed through as built, since
    # validating our own output against SiteAppsOut (which documents it) would cost about
    # as much as the query. A test checks that the two agree.
    return HttpResponse(document, content_type="application/json")


@router.get(
    "/apps/{app_id}/sites",
    response=SitesPageOut,
    summary="Sites that have an app installed, keyset-paginated (from the read replica)",
)
def sites_with_app(
    request, page: Query[PageQuery], app_id: str = Path(..., pattern=APP_ID_PATTERN)
):
    after = _decode_cursor(page.cursor) if page.cursor else None
    items, more = selectors.sites_with_app(app_id=app_id, after=after, limit=page.limit)
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
