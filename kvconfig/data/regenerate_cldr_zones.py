"""Regenerate ``cldr_zones.json``, the extract of CLDR's time-zone data the platform uses.

    python kvconfig/data/regenerate_cldr_zones.py [CLDR_VERSION]

It downloads the ``cldr-core`` and ``cldr-bcp47`` packages from the npm registry (``npm
pack``; the Unicode CLDR project publishes its JSON data there), and writes, with every
zone under its IANA name (CLDR keeps older ids such as ``Asia/Calcutta``):

- ``primary_zones``: CLDR's primary zone of the countries where it names one;
- ``golden_zones``: for each metazone (a set of zones that share a name and, today, their
  offsets, e.g. ``America_Eastern``), its exemplar zone per territory, ``001`` being the
  world-wide one;
- ``metazones``: the metazone each zone uses today.

Only this script needs npm; the platform reads the JSON file it writes.
"""

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "cldr_zones.json"


def _unpack(package: str, version: str, into: Path) -> Path:
    spec = f"{package}@{version}" if version else package
    name = subprocess.run(
        ["npm", "pack", "--silent", spec], cwd=into, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    target = into / package
    with tarfile.open(into / name) as archive:
        archive.extractall(target, filter="data")
    return target / "package"


def _iana_names(bcp47: Path) -> dict[str, str]:
    """Every CLDR zone id and alias → its IANA name."""
    zones = json.loads((bcp47 / "bcp47" / "timezone.json").read_text())["keyword"]["u"]["tz"]
    names = {}
    for entry in zones.values():
        if not isinstance(entry, dict) or "_alias" not in entry:
            continue
        aliases = entry["_alias"].split()
        for alias in aliases:
            names[alias] = entry.get("_iana", aliases[0])
    return names


def extract(core: Path, bcp47: Path) -> dict:
    iana = _iana_names(bcp47)

    def name(zone: str) -> str:
        return iana.get(zone, zone)

    supplemental = core / "supplemental"
    meta = json.loads((supplemental / "metaZones.json").read_text())["supplemental"]
    primary = json.loads((supplemental / "primaryZones.json").read_text())["supplemental"]
    golden: dict[str, dict[str, str]] = {}
    for item in meta["metaZones"]["metazones"]:
        zone = item["mapZone"]
        golden.setdefault(zone["_other"], {})[zone["_territory"]] = name(zone["_type"])
    current: dict[str, str] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, list):  # a zone: its metazones over time
                today = [u["usesMetazone"] for u in value if "_to" not in u["usesMetazone"]]
                if today:
                    current[name(prefix + key)] = today[0]["_mzone"]
            else:
                walk(f"{prefix}{key}/", value)

    walk("", meta["metaZones"]["metazoneInfo"]["timezone"])
    return {
        "cldr_version": meta["version"]["_cldrVersion"],
        "primary_zones": {c: name(z) for c, z in sorted(primary["primaryZones"].items())},
        "golden_zones": {m: dict(sorted(t.items())) for m, t in sorted(golden.items())},
        "metazones": dict(sorted(current.items())),
    }


def main(version: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        core = _unpack("cldr-core", version, Path(tmp))
        bcp47 = _unpack("cldr-bcp47", version, Path(tmp))
        data = extract(core, bcp47)
    OUTPUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUTPUT} from CLDR {data['cldr_version']}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
