"""The events of ``sites.metadata`` (schema version 1), built and parsed in one place.

``SiteMetadataChanged`` carries the full snapshot of a site with its new ``version``;
``SiteDeleted`` carries the version of the deletion. Consumers keep the highest version they
saw per site, so duplicates and reordering are harmless.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from eventplatform.kafka.envelope import Event, PoisonRecord

SITE_METADATA_CHANGED = "SiteMetadataChanged"
SITE_DELETED = "SiteDeleted"
SCHEMA_VERSION = 1
#: The major version this code reads; newer versions of it only add fields.
KNOWN_MAJOR = 1

#: App ids are short slugs so they travel safely in URLs, keys and events.
APP_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_APP_ID = re.compile(APP_ID_PATTERN)
#: A time as the projection spells it (``datetime.isoformat`` of a UTC time, which leaves
#: out a zero fraction): text in this form is kept as it came, any other is respelled.
_UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(?!000000)\d{6})?\+00:00")


def site_metadata_changed(site, apps) -> Event:
    """The snapshot event of ``site`` (a ``Site``) with its ``apps`` (``AppInstallation``s)."""
    return Event(
        type=SITE_METADATA_CHANGED,
        version=SCHEMA_VERSION,
        data={
            "site_id": str(site.id),
            "version": site.version,
            "name": site.name,
            "owner": site.owner_name,
            "created_at": site.created_at.isoformat(),
            "updated_at": site.updated_at.isoformat(),
            "apps": [
                {
                    "app_id": app.app_id,
                    "installed_at": app.installed_at.isoformat(),
                    "settings": app.settings,
                }
                for app in sorted(apps, key=lambda a: a.app_id)
            ],
        },
    )


def site_deleted(*, site_id: uuid.UUID, version: int) -> Event:
    """The event of a deletion; ``version`` is one above the site's last version."""
    return Event(
        type=SITE_DELETED,
        version=SCHEMA_VERSION,
        data={"site_id": str(site_id), "version": version},
    )


@dataclass(frozen=True, slots=True)
class SiteChange:
    """What a projection needs from either event: the site, its version, its apps.

    ``apps`` are ``(app_id, installed_at)`` pairs in app id order; :func:`parse_site_change`
    gives each time as ISO 8601 text in UTC, the form the projection stores and serves, so
    nothing parses it into a datetime only to spell it out again. A change built by hand
    may give aware datetimes instead.
    """

    site_id: uuid.UUID
    version: int
    deleted: bool
    apps: tuple[tuple[str, str | datetime], ...]


def parse_site_change(raw: bytes | None) -> SiteChange:
    """Decode a ``sites.metadata`` record or raise :class:`PoisonRecord` saying what is wrong."""
    event = Event.decode(raw).require_major(KNOWN_MAJOR)
    if event.type not in (SITE_METADATA_CHANGED, SITE_DELETED):
        raise PoisonRecord(f"unknown event type {event.type!r} on sites.metadata")
    data = event.data
    try:
        site_id = uuid.UUID(data["site_id"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PoisonRecord("data.site_id must be a UUID") from None
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PoisonRecord("data.version must be a positive integer")
    if event.type == SITE_DELETED:
        return SiteChange(site_id=site_id, version=version, deleted=True, apps=())
    apps = data.get("apps")
    if not isinstance(apps, list):
        raise PoisonRecord("data.apps must be a list")
    parsed: dict[str, str] = {}
    for index, app in enumerate(apps):
        if type(app) is not dict:
            raise PoisonRecord(f"data.apps[{index}] must be an object")
        app_id = app.get("app_id")
        if type(app_id) is not str or not _APP_ID.fullmatch(app_id):
            raise PoisonRecord(f"data.apps[{index}].app_id must be an app id slug")
        installed_at = app.get("installed_at")
        try:
            # Parsed even when already in UTC form, as the check that the date exists.
            moment = datetime.fromisoformat(installed_at)
        except (TypeError, ValueError):
            raise PoisonRecord(f"data.apps[{index}].installed_at must be an ISO date") from None
        if moment.tzinfo is None:
            raise PoisonRecord(f"data.apps[{index}].installed_at must carry a time zone")
        if app_id in parsed:
            raise PoisonRecord(f"data.apps lists {app_id!r} twice")
        if not _UTC_TEXT.fullmatch(installed_at):
            installed_at = moment.astimezone(UTC).isoformat()
        parsed[app_id] = installed_at
    return SiteChange(
        site_id=site_id, version=version, deleted=False, apps=tuple(sorted(parsed.items()))
    )
