"""REST API of the MetaSite source of truth (``/api/sites``); writes need ``api_auth``.

Views only parse, call one service and answer: unknown ids are 404, invalid input 422 with
the offending field in ``loc`` (the same shape as django-ninja's own validation errors).
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from ninja import Field, Path, Router, Schema
from ninja.errors import HttpError
from ninja.responses import Response, Status

from eventplatform.auth import api_auth
from eventplatform.outbox import EventTooLarge

from . import selectors, services
from .events import APP_ID_PATTERN

router = Router()

AppId = Path(..., pattern=APP_ID_PATTERN, description="app id slug")


class SiteIn(Schema):
    name: str = Field(min_length=1, max_length=200)
    owner: str = Field(min_length=1, max_length=200)


class SitePatch(Schema):
    name: str = Field(None, min_length=1, max_length=200)
    owner: str = Field(None, min_length=1, max_length=200)


class AppInstallIn(Schema):
    settings: dict[str, Any] = Field(default_factory=dict)


class AppInstallationOut(Schema):
    app_id: str
    installed_at: datetime
    settings: dict[str, Any]


class SiteOut(Schema):
    id: uuid.UUID
    name: str
    owner: str
    version: int
    created_at: datetime
    updated_at: datetime
    apps: list[AppInstallationOut]

    @staticmethod
    def resolve_apps(site) -> list:
        return list(site.apps.all())


class ErrorOut(Schema):
    detail: str


class TooLargeOut(Schema):
    detail: str
    limit_bytes: int


def _service_errors(view: Callable) -> Callable:
    """Turn the services' errors into answers: not found 404, too large 413, invalid 422."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (services.SiteNotFound, services.AppNotInstalled) as error:
            raise HttpError(404, str(error)) from None
        except EventTooLarge as error:
            # The site's snapshot event would not fit in a Kafka record: nothing was stored.
            return Response({"detail": str(error), "limit_bytes": error.limit}, status=413)
        except ValidationError as error:
            return Response(
                {
                    "detail": [
                        {"type": "value_error", "loc": ["body", field], "msg": " ".join(messages)}
                        for field, messages in error.message_dict.items()
                    ]
                },
                status=422,
            )

    return wrapper


def _site_or_404(site_id: uuid.UUID):
    site = selectors.get_site(site_id=site_id)
    if site is None:
        raise HttpError(404, f"site {site_id} does not exist")
    return site


@router.post("", response={201: SiteOut}, auth=api_auth, summary="Create a site")
@_service_errors
def create_site(request, payload: SiteIn):
    site = services.create_site(name=payload.name, owner=payload.owner)
    return Status(201, _site_or_404(site.id))


@router.get("/{site_id}", response={200: SiteOut, 404: ErrorOut}, summary="A site")
def get_site(request, site_id: uuid.UUID):
    return _site_or_404(site_id)


@router.patch(
    "/{site_id}",
    response={200: SiteOut, 404: ErrorOut, 413: TooLargeOut},
    auth=api_auth,
    summary="Change a site",
)
@_service_errors
def update_site(request, site_id: uuid.UUID, payload: SitePatch):
    changes = payload.dict(exclude_unset=True)
    services.update_site(site_id=site_id, **changes)
    return _site_or_404(site_id)


@router.delete(
    "/{site_id}", response={204: None, 404: ErrorOut}, auth=api_auth, summary="Delete a site"
)
@_service_errors
def delete_site(request, site_id: uuid.UUID):
    services.delete_site(site_id=site_id)
    return HttpResponse(status=204)


@router.put(
    "/{site_id}/apps/{app_id}",
    response={200: SiteOut, 404: ErrorOut, 413: TooLargeOut},
    auth=api_auth,
    summary="Install an app on a site (or replace its settings)",
)
@_service_errors
def install_app(request, site_id: uuid.UUID, payload: AppInstallIn, app_id: str = AppId):
    services.install_app(site_id=site_id, app_id=app_id, settings=payload.settings)
    return _site_or_404(site_id)


@router.delete(
    "/{site_id}/apps/{app_id}",
    response={204: None, 404: ErrorOut},
    auth=api_auth,
    summary="Uninstall an app from a site",
)
@_service_errors
def uninstall_app(request, site_id: uuid.UUID, app_id: str = AppId):
    services.uninstall_app(site_id=site_id, app_id=app_id)
    return HttpResponse(status=204)
