"""REST API of the MetaSite source of truth (``/api/sites``).

Views only parse, call one service and answer; the services' errors are mapped to their
status codes in ``eventplatform.api`` (unknown ids 404, not allowed 403, a bound 409/413,
invalid input 422 with the offending field in ``loc``). Every operation needs a user
(``NinjaAPI(auth=...)``); creating is open to any of them, changing and deleting to the
site's owner or a user with the model permission.
"""

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Path, Router, Schema
from ninja.responses import Status

from eventplatform.errors import BODY_ERRORS, responses

from . import permissions, selectors, services
from .events import APP_ID_PATTERN
from .models import Site

router = Router()

AppId = Path(..., pattern=APP_ID_PATTERN, description="app id slug")


#: PostgreSQL text holds no NUL character.
NO_NUL = r"^[^\x00]*$"


class SiteIn(Schema):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    owner: str | None = Field(
        None,
        min_length=1,
        max_length=150,
        pattern=NO_NUL,
        description="username of the owner; default: you (another user needs change_site)",
    )


class SitePatch(Schema):
    name: str = Field(None, min_length=1, max_length=200, pattern=NO_NUL)
    owner: str = Field(None, min_length=1, max_length=150, pattern=NO_NUL, description="username")


class AppInstallIn(Schema):
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="a JSON object of at most SITES_MAX_APP_SETTINGS_BYTES (16 KiB) as JSON; "
        "no NaN/Infinity and no NUL character (\\u0000) in any string (422)",
    )


class AppInstallationOut(Schema):
    app_id: str
    installed_at: datetime
    settings: dict[str, Any] | None = Field(
        description="null unless you own the site or are staff: settings may hold secrets"
    )


class SiteOut(Schema):
    id: uuid.UUID
    name: str
    owner: str = Field(description="the owner's username ('' if the site has none)")
    version: int
    created_at: datetime
    updated_at: datetime
    apps: list[AppInstallationOut]


def _site_out(request: HttpRequest, site_id: uuid.UUID) -> dict:
    """The site as ``SiteOut`` for this user (app settings only to owner and staff)."""
    site = selectors.get_site(site_id=site_id)
    if site is None:
        raise services.SiteNotFound(f"site {site_id} does not exist")
    return _as_dict(site, show_settings=permissions.can_see_settings(request.auth, site))


def _as_dict(site: Site, *, show_settings: bool) -> dict:
    return {
        "id": site.id,
        "name": site.name,
        "owner": site.owner_name,
        "version": site.version,
        "created_at": site.created_at,
        "updated_at": site.updated_at,
        "apps": [
            {
                "app_id": app.app_id,
                "installed_at": app.installed_at,
                "settings": app.settings if show_settings else None,
            }
            for app in site.apps.all()
        ],
    }


@router.post("", response=responses({201: SiteOut}, *BODY_ERRORS, 413), summary="Create a site")
def create_site(request, payload: SiteIn):
    owner = (
        services.owner_for_new_site(payload.owner, actor=request.auth)
        if payload.owner
        else request.auth
    )
    site = services.create_site(name=payload.name, owner=owner, actor=request.auth)
    return Status(201, _site_out(request, site.id))


@router.get("/{site_id}", response=responses({200: SiteOut}, 404, 422), summary="A site")
def get_site(request, site_id: uuid.UUID):
    return _site_out(request, site_id)


@router.patch(
    "/{site_id}",
    response=responses({200: SiteOut}, 404, *BODY_ERRORS),
    summary="Change a site (its owner, or a user with change_site)",
)
def update_site(request, site_id: uuid.UUID, payload: SitePatch):
    changes = payload.dict(exclude_unset=True)
    if "owner" in changes:
        changes["owner_name"] = changes.pop("owner")
    services.update_site(site_id=site_id, actor=request.auth, **changes)
    return _site_out(request, site_id)


@router.delete(
    "/{site_id}",
    response=responses({204: None}, 404, 422),
    summary="Delete a site (its owner, or a user with delete_site)",
)
def delete_site(request, site_id: uuid.UUID):
    services.delete_site(site_id=site_id, actor=request.auth)
    return HttpResponse(status=204)


@router.put(
    "/{site_id}/apps/{app_id}",
    response=responses({200: SiteOut}, 404, 409, *BODY_ERRORS),
    summary="Install an app on a site (or replace its settings)",
    description="409: the site already has SITES_MAX_APPS_PER_SITE (10,000) apps.",
)
def install_app(request, site_id: uuid.UUID, payload: AppInstallIn, app_id: str = AppId):
    services.install_app(
        site_id=site_id, app_id=app_id, settings=payload.settings, actor=request.auth
    )
    return _site_out(request, site_id)


@router.delete(
    "/{site_id}/apps/{app_id}",
    response=responses({204: None}, 404, 422),
    summary="Uninstall an app from a site",
)
def uninstall_app(request, site_id: uuid.UUID, app_id: str = AppId):
    services.uninstall_app(site_id=site_id, app_id=app_id, actor=request.auth)
    return HttpResponse(status=204)
