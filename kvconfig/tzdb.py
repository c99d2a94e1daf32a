"""The tz database's tables: country codes and names, and the zones of each country.

The ``tzdata`` package ships ``iso3166.tab`` and ``zone.tab``; the system's
``/usr/share/zoneinfo`` is the fall-back when that package is missing.
"""

import functools
import zoneinfo
from importlib import resources
from pathlib import Path

SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")


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
