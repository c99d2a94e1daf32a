"""Writes to the MetaSite source of truth.

Every function runs in one transaction that locks the site row, bumps its ``version`` and
publishes the site's full snapshot (or its deletion) through the outbox, so no change is
ever committed without its event, nor an event without its change.
"""

import uuid
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from eventplatform.outbox import publish

from .events import site_deleted, site_metadata_changed
from .models import AppInstallation, Site
from .topics import SITES_METADATA


class SiteNotFound(LookupError):
    """No site has this id."""


class AppNotInstalled(LookupError):
    """The site exists but does not have this app installed."""


def create_site(*, name: str, owner: str) -> Site:
    """Create a site at version 1 and publish its snapshot."""
    site = Site(name=name, owner=owner)
    site.full_clean(validate_unique=False)
    with transaction.atomic():
        site.save(force_insert=True)
        _publish_snapshot(site)
    return site


def update_site(*, site_id: uuid.UUID, name: str | None = None, owner: str | None = None) -> Site:
    """Change a site's name and/or owner; publishes only if something changed."""
    with transaction.atomic():
        site = _lock_site(site_id)
        changes = {
            field: value
            for field, value in (("name", name), ("owner", owner))
            if value is not None and getattr(site, field) != value
        }
        if not changes:
            return site
        for field, value in changes.items():
            setattr(site, field, value)
        site.full_clean(validate_unique=False)
        _bump_and_publish(site, fields=list(changes))
    return site


def delete_site(*, site_id: uuid.UUID) -> None:
    """Delete a site and its installs; the deletion event carries the next version."""
    with transaction.atomic():
        site = _lock_site(site_id)
        version = site.version + 1
        site.delete()
        publish(SITES_METADATA, str(site_id), site_deleted(site_id=site_id, version=version))


def install_app(
    *, site_id: uuid.UUID, app_id: str, settings: dict | None = None
) -> AppInstallation:
    """Install ``app_id`` on a site, or replace its settings if already installed.

    Installing again with the same settings changes nothing and publishes nothing.
    """
    settings = {} if settings is None else settings
    if not isinstance(settings, dict):
        raise ValidationError({"settings": ["must be a JSON object"]})
    with transaction.atomic():
        site = _lock_site(site_id)
        installation = site.apps.filter(app_id=app_id).first()
        if installation is not None and installation.settings == settings:
            return installation
        if installation is None:
            installation = AppInstallation(
                site=site, app_id=app_id, installed_at=timezone.now(), settings=settings
            )
        else:
            installation.settings = settings
        installation.full_clean(validate_constraints=False)
        installation.save()
        _bump_and_publish(site, fields=[])
    return installation


def uninstall_app(*, site_id: uuid.UUID, app_id: str) -> None:
    """Remove ``app_id`` from a site; :class:`AppNotInstalled` if it was not there."""
    with transaction.atomic():
        site = _lock_site(site_id)
        deleted, _ = site.apps.filter(app_id=app_id).delete()
        if not deleted:
            raise AppNotInstalled(f"app {app_id!r} is not installed on site {site_id}")
        _bump_and_publish(site, fields=[])


def publish_all_sites(*, chunk_size: int = 500) -> int:
    """Publish the current snapshot of every site (backfill); return how many.

    Walks the sites in id order a chunk at a time, each chunk in its own transaction with
    its rows locked, so memory stays constant and every snapshot is internally consistent.
    """
    published = 0
    for chunk in _site_chunks(chunk_size):
        published += len(chunk)
    return published


def _site_chunks(chunk_size: int) -> Iterator[list[Site]]:
    after = None
    while True:
        with transaction.atomic():
            sites = Site.objects.select_for_update().order_by("id")
            if after is not None:
                sites = sites.filter(id__gt=after)
            chunk = list(sites.prefetch_related("apps")[:chunk_size])
            for site in chunk:
                _publish_snapshot(site, apps=list(site.apps.all()))
        if not chunk:
            return
        yield chunk
        after = chunk[-1].id


def _lock_site(site_id: uuid.UUID) -> Site:
    try:
        return Site.objects.select_for_update().get(pk=site_id)
    except Site.DoesNotExist:
        raise SiteNotFound(f"site {site_id} does not exist") from None


def _bump_and_publish(site: Site, *, fields: list[str]) -> None:
    site.version += 1
    site.save(update_fields=[*fields, "version", "updated_at"])
    _publish_snapshot(site)


def _publish_snapshot(site: Site, *, apps: list[AppInstallation] | None = None) -> None:
    apps = list(site.apps.all()) if apps is None else apps
    publish(SITES_METADATA, str(site.id), site_metadata_changed(site, apps))
