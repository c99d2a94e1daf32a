"""Time zones derived from supported countries: the tz database's zones of each country,
and its primary zone from CLDR's data (see :func:`kvconfig.tzdb.primary_zone`)."""

import logging
from typing import Any

from . import tzdb
from .store import KVKeyNotFound, KVStore

logger = logging.getLogger("kvconfig.derivation")

EDITOR = "derive_time_zones"


def zones_for(country: str) -> dict | None:
    """``{"zones": [...], "primary": ...}`` for a country, None if the table has no zone."""
    zones = tzdb.country_zones().get(country)
    if not zones:
        return None
    return {"zones": list(zones), "primary": tzdb.primary_zone(country)}


def _matches(current: Any, derived: dict) -> bool:
    # Nobody edits a derived namespace by hand, so a different primary is an older
    # derivation's (the tz data or CLDR's changed) and is written anew.
    return (
        current is not None
        and sorted(current["zones"]) == sorted(derived["zones"])
        and current["primary"] == derived["primary"]
    )


def sync_country(*, country: str, countries: KVStore, time_zones: KVStore) -> str:
    """Bring one country's time zones in line with ``countries``; returns what was done.

    Idempotent: it compares the current states, so replaying a change writes nothing.
    """
    current = time_zones.get(country)
    if country not in countries:
        if current is None:
            return "unchanged"
        try:
            time_zones.delete(country, editor=EDITOR)
        except KVKeyNotFound:
            return "unchanged"  # another deriver (in a rebalance) deleted it meanwhile
        return "deleted"
    derived = zones_for(country)
    if derived is None:
        logger.warning("no time zones known for country", extra={"country": country})
        return "unknown"
    if _matches(current, derived):
        return "unchanged"
    time_zones.put(country, derived, editor=EDITOR)
    return "written"


def reconcile(*, countries: KVStore, time_zones: KVStore) -> dict[str, int]:
    """Sync every country in either store; returns how many of each outcome."""
    outcomes: dict[str, int] = {}
    for country in sorted(set(countries.keys()) | set(time_zones.keys())):
        outcome = sync_country(country=country, countries=countries, time_zones=time_zones)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
