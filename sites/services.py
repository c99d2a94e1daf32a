"""Writes to the MetaSite source of truth.

Every function runs in one transaction that locks the site row, bumps its ``version`` and
publishes the site's full snapshot (or its deletion) through the outbox, so no change is
ever committed without its event, nor an event without its change.

Given an ``actor`` (the API and the admin pass the requesting user), a service refuses
with :class:`NotAllowed` what ``sites.permissions`` does not allow that user; without one
the caller is trusted (management commands, backfills).

Bounds: ``SITES_MAX_APPS_PER_SITE`` apps per site (10,000) and ``SITES_MAX_APP_SETTINGS_BYTES``
of settings per app (16 KiB, as compact JSON). Every change republishes the whole site, so
these bound each event; the outbox's ``OUTBOX_MAX_EVENT_BYTES`` bounds its total.
"""

import json
import re
import uuid
from collections.abc import Iterator

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from eventplatform.errors import Forbidden, LimitExceeded, NotFound
from eventplatform.outbox import publish

from . import permissions
from .events import site_deleted, site_metadata_changed
from .models import AppInstallation, Site
from .topics import SITES_METADATA

DEFAULT_MAX_APPS_PER_SITE = 10_000
DEFAULT_MAX_APP_SETTINGS_BYTES = 16 * 1024


class SiteNotFound(NotFound):
    """No site has this id."""


class AppNotInstalled(NotFound):
    """The site exists but does not have this app installed."""


class NotAllowed(Forbidden):
    """The actor may not do this to this site."""


def max_apps_per_site() -> int:
    return getattr(django_settings, "SITES_MAX_APPS_PER_SITE", DEFAULT_MAX_APPS_PER_SITE)


def max_app_settings_bytes() -> int:
    return getattr(django_settings, "SITES_MAX_APP_SETTINGS_BYTES", DEFAULT_MAX_APP_SETTINGS_BYTES)


def user_named(username: str) -> AbstractBaseUser:
    """The active user called ``username``, or a 422-style error on the ``owner`` field."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise ValidationError({"owner": [f"no active user is named {username!r}"]})
    return user


_ANOTHER_OWNER = "only a user with the change_site permission may name another owner"


def owner_for_new_site(username: str, *, actor: AbstractBaseUser) -> AbstractBaseUser:
    """The user ``actor`` names as the owner of a site they create.

    The permission is asked before the name is looked up, so a caller who may name only
    themselves learns nothing about which usernames exist (always 403, never 422).
    """
    if not permissions.can_name_as_owner(actor, username):
        raise NotAllowed(_ANOTHER_OWNER)
    return user_named(username)


def create_site(
    *, name: str, owner: AbstractBaseUser | None, actor: AbstractBaseUser | None = None
) -> Site:
    """Create a site at version 1 owned by ``owner`` and publish its snapshot.

    ``owner=None`` (trusted callers only) makes a site only permission holders may change.
    """
    if actor is not None and (
        owner is None or not permissions.can_name_as_owner(actor, owner.get_username())
    ):
        raise NotAllowed(_ANOTHER_OWNER)
    site = Site(name=name, owner=owner)
    site.full_clean(validate_unique=False)
    with transaction.atomic():
        site.save(force_insert=True)
        _publish_snapshot(site)
    return site


def update_site(
    *,
    site_id: uuid.UUID,
    name: str | None = None,
    owner: AbstractBaseUser | None = None,
    owner_name: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> Site:
    """Change a site's name and/or owner; publishes only if something changed.

    ``owner_name`` names the new owner by username. It is looked up only once ``actor``
    may change the site, so nobody else learns from the answer whether the name exists.
    """
    with transaction.atomic():
        site = _lock_site(site_id)
        _require(actor, permissions.can_change, site, "change")
        if owner_name is not None:
            owner = user_named(owner_name)
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


def delete_site(*, site_id: uuid.UUID, actor: AbstractBaseUser | None = None) -> None:
    """Delete a site and its installs; the deletion event carries the next version."""
    with transaction.atomic():
        site = _lock_site(site_id)
        _require(actor, permissions.can_delete, site, "delete")
        version = site.version + 1
        site.delete()
        publish(SITES_METADATA, str(site_id), site_deleted(site_id=site_id, version=version))


def install_app(
    *,
    site_id: uuid.UUID,
    app_id: str,
    settings: dict | None = None,
    actor: AbstractBaseUser | None = None,
) -> AppInstallation:
    """Install ``app_id`` on a site, or replace its settings if already installed.

    Installing again with the same settings changes nothing and publishes nothing.
    """
    settings = {} if settings is None else settings
    check_settings(settings)
    with transaction.atomic():
        site = _lock_site(site_id)
        _require(actor, permissions.can_change, site, "change")
        installation = site.apps.filter(app_id=app_id).first()
        if installation is not None and _same_json(installation.settings, settings):
            return installation
        if installation is None:
            _check_room_for_one_more(site)
            installation = AppInstallation(
                site=site, app_id=app_id, installed_at=timezone.now(), settings=settings
            )
        else:
            installation.settings = settings
        installation.full_clean(validate_constraints=False)
        installation.save()
        _bump_and_publish(site, fields=[])
    return installation


def uninstall_app(
    *, site_id: uuid.UUID, app_id: str, actor: AbstractBaseUser | None = None
) -> None:
    """Remove ``app_id`` from a site; :class:`AppNotInstalled` if it was not there."""
    with transaction.atomic():
        site = _lock_site(site_id)
        _require(actor, permissions.can_change, site, "change")
        deleted, _ = site.apps.filter(app_id=app_id).delete()
        if not deleted:
            raise AppNotInstalled(f"app {app_id!r} is not installed on site {site_id}")
        _bump_and_publish(site, fields=[])


def publish_every_site(*, chunk_size: int = 500) -> Iterator[Site]:
    """Publish the current snapshot of every site (backfill), yielding each once published.

    Walks the sites in id order a chunk at a time, each chunk in its own transaction with
    its rows locked, so memory stays constant and every snapshot is internally consistent;
    a chunk's sites are yielded after its transaction committed.
    """
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
        yield from chunk
        after = chunk[-1].id


def _require(actor: AbstractBaseUser | None, allowed, site: Site, action: str) -> None:
    if actor is not None and not allowed(actor, site):
        raise NotAllowed(
            f"only the site's owner or a user with the {action}_site permission may "
            f"{action} site {site.pk}"
        )


def check_settings(settings: object) -> None:
    """Settings are a JSON object (no NaN/Infinity: JSON has none) within the size bound."""
    if not isinstance(settings, dict):
        raise ValidationError({"settings": ["must be a JSON object"]})
    try:
        encoded = json.dumps(settings, allow_nan=False, separators=(",", ":"))
    except ValueError:
        raise ValidationError(
            {"settings": ["NaN and Infinity are not JSON numbers: use null or a string"]}
        ) from None
    unstorable = _unstorable_character(settings)
    if unstorable == "\x00":
        # PostgreSQL's jsonb cannot store it.
        raise ValidationError({"settings": ["strings may not contain the NUL character"]})
    if unstorable:
        # JSON can spell one (\ud800), but it is no character: jsonb refuses it, and so
        # would every reader of the event.
        raise ValidationError(
            {"settings": ["strings may not contain unpaired surrogates (\\ud800 to \\udfff)"]}
        )
    limit = max_app_settings_bytes()
    if len(encoded.encode()) > limit:
        raise LimitExceeded(
            f"the app's settings are {len(encoded.encode()):,} bytes as JSON; "
            f"the limit is {limit:,} bytes",
            limit=limit,
            status=413,
            in_bytes=True,
        )


#: What jsonb cannot store: NUL, and unpaired surrogates (no character at all).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable_character(value: object) -> str | None:
    """The first :data:`_UNSTORABLE` character in any string of ``value``, keys included."""
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        return found.group() if found else None
    if isinstance(value, dict):
        parts = [part for pair in value.items() for part in pair]
    elif isinstance(value, list):
        parts = value
    else:
        return None
    return next(filter(None, map(_unstorable_character, parts)), None)


def _same_json(first: object, second: object) -> bool:
    """Equal as JSON: unlike ``==``, 1, 1.0 and true are three different values."""
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def _check_room_for_one_more(site: Site) -> None:
    limit = max_apps_per_site()
    if site.apps.count() >= limit:
        raise LimitExceeded(
            f"site {site.pk} already has the maximum of {limit:,} apps; uninstall one first",
            limit=limit,
            status=409,
        )


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
