"""The JSON document the read API serves for one version of a site, and its entity tag.

The projector builds the document once, when it stores that version, in the same
transaction as the site's rows; the read API then serves the stored bytes as they are, so
a read costs one indexed look-up and no serialisation. The shape is the API's
``SiteAppsOut``; times are ISO 8601 in UTC, as the database gives them back.
"""

import functools
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from uuid import UUID


def site_document(
    *,
    site_id: UUID,
    version: int,
    projected_at: str,
    apps: Iterable[tuple[str, str]],
) -> str:
    """The document of ``version`` of a site with ``apps`` (``(app_id, installed_at)``
    pairs, listed in app id order); the times are :func:`utc_text` already, since the
    projector writes the same text into the app rows."""
    listed = ",".join(
        f'{{"app_id":{json_string(app_id)},"installed_at":"{installed_at}"}}'
        for app_id, installed_at in apps
    )
    return (
        f'{{"site_id":"{site_id}","version":{int(version)},'
        f'"projected_at":"{projected_at}","apps":[{listed}]}}'
    )


@functools.lru_cache(maxsize=4096)
def json_string(text: str) -> str:
    """``text`` as a JSON string. Remembered: a batch spells the same few app ids over and
    over, and a look-up costs a tenth of ``json.dumps``."""
    return json.dumps(text)


def utc_text(moment: datetime) -> str:
    """``moment`` as the document spells times: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat()


def entity_tag(*, generation: int, version: int) -> str:
    """The ``ETag`` of a stored document: the same version in the same generation is the
    same document, and a rebuild (a new generation) projects it again at another time."""
    return f'"{generation}.{version}"'
