"""Reads from the MetaSite source of truth."""

import uuid

from .models import Site


def get_site(*, site_id: uuid.UUID) -> Site | None:
    """The site with its installed apps, or ``None``."""
    return Site.objects.select_related("owner").prefetch_related("apps").filter(pk=site_id).first()


def count_sites() -> int:
    return Site.objects.count()
