"""Country codes and names, the zones of each country, and each country's primary zone.

The ``tzdata`` package ships the tz database's ``iso3166.tab`` and ``zone.tab``; the
system's ``/usr/share/zoneinfo`` is the fall-back when that package is missing. Which of a
country's zones is its primary one comes from Unicode CLDR's data, kept in
``data/cldr_zones.json`` (``data/regenerate_cldr_zones.py`` writes it anew).
"""

import functools
import json
import zoneinfo
from collections import Counter
from importlib import resources
from pathlib import Path

SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")
CLDR_ZONES = Path(__file__).resolve().parent / "data" / "cldr_zones.json"


def _read_table(name: str) -> list[list[str]]:
    """Rows of a tab-separated tz table, comments and blank lines dropped."""
    try:
        text = (resources.files("tzdata") / "zoneinfo" / name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = (SYSTEM_ZONEINFO / name).read_text(encoding="utf-8")
    return [
        line.split("\t") for line in text.splitlines() if line.strip() and not line.startswith("#")
    ]


@functools.cache
def country_names() -> dict[str, str]:
    """ISO 3166 alpha-2 code → English name, as the tz database lists them."""
    return {row[0]: row[1] for row in _read_table("iso3166.tab")}


@functools.cache
def country_zones() -> dict[str, tuple[str, ...]]:
    """Country code → its IANA zones in ``zone.tab`` order (the most populous first).

    ``zone.tab`` has exactly one country per row, so each country gets every zone its
    clocks follow; ``zone1970.tab`` would merge countries that share a zone since 1970.
    """
    zones: dict[str, list[str]] = {}
    for row in _read_table("zone.tab"):
        zones.setdefault(row[0], []).append(row[2])
    return {code: tuple(names) for code, names in zones.items()}


@functools.cache
def available_zones() -> frozenset[str]:
    """Every IANA zone name this Python can load (cached: the lookup walks the disk)."""
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _cldr() -> dict:
    return json.loads(CLDR_ZONES.read_text(encoding="utf-8"))


@functools.cache
def primary_zone(country: str) -> str | None:
    """The zone that stands for ``country`` as a whole, None if it has no zone.

    CLDR names the primary zone of a few countries outright. For the others: the zones of
    a country fall into metazones (zones that share a name and their offsets today, e.g.
    Brazil's ``Brasilia``, ``Amazon``, ``Noronha``); the metazone that covers most of the
    country's zones wins (a tie goes to the one ``zone.tab`` lists first), and CLDR's
    exemplar ("golden") zone of that metazone for this country, or for the world when it
    lies in this country, is the primary zone: Brazil gets ``America/Sao_Paulo``, the
    United States ``America/New_York``, Australia ``Australia/Sydney``.
    """
    zones = country_zones().get(country)
    if not zones:
        return None
    cldr = _cldr()
    named = cldr["primary_zones"].get(country)
    if named in zones:
        return named
    metazones = cldr["metazones"]
    counts = Counter(metazones[zone] for zone in zones if zone in metazones)
    if not counts:
        return zones[0]
    # Counter keeps first-seen order among equal counts: zone.tab order breaks ties.
    widest = counts.most_common(1)[0][0]
    golden = cldr["golden_zones"].get(widest, {})
    for territory in (country, "001"):
        if golden.get(territory) in zones:
            return golden[territory]
    return next(zone for zone in zones if metazones.get(zone) == widest)
