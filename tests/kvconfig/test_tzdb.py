"""Each country's zones from the tz database, and its primary zone from CLDR's data."""

import pytest

from kvconfig import tzdb
from kvconfig.derivation import zones_for


@pytest.mark.parametrize(
    ("country", "primary"),
    [
        ("BR", "America/Sao_Paulo"),  # not America/Noronha, an island listed first
        ("US", "America/New_York"),
        ("AU", "Australia/Sydney"),  # not Australia/Lord_Howe, listed first
        ("MX", "America/Mexico_City"),
        ("ID", "Asia/Jakarta"),
        ("CN", "Asia/Shanghai"),  # named by CLDR's primary zones
        ("DE", "Europe/Berlin"),
        ("UA", "Europe/Kyiv"),  # CLDR's own id is Europe/Kiev: IANA's name is kept
        ("FR", "Europe/Paris"),  # countries with a single zone
        ("SS", "Africa/Juba"),
        ("JP", "Asia/Tokyo"),
        ("IN", "Asia/Kolkata"),
    ],
)
def test_primary_zone_of_a_country(country, primary):
    assert tzdb.primary_zone(country) == primary
    assert zones_for(country)["primary"] == primary


def test_every_country_gets_one_of_its_own_zones_as_primary():
    for country, zones in tzdb.country_zones().items():
        assert tzdb.primary_zone(country) in zones, country


def test_a_country_without_zones_has_no_primary():
    assert tzdb.primary_zone("ZZ") is None
    assert zones_for("ZZ") is None


def test_brazil_lists_every_zone_with_sao_paulo_primary():
    derived = zones_for("BR")
    assert "America/Noronha" in derived["zones"] and "America/Manaus" in derived["zones"]
    assert derived["primary"] == "America/Sao_Paulo"
