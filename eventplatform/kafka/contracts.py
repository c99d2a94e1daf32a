"""Where the event contracts live: one JSON Schema file per event type and version.

Each app keeps the schemas of the events it produces in ``<app>/schemas/<type>.v<N>.json``;
the envelope's own schema is ``eventplatform/kafka/schemas/envelope.v1.json``. The files are
the contract other teams read (and the tests check both producers and consumers against
them); the code does not validate against them at run time, where it would cost throughput.
"""

import json
from functools import cache
from pathlib import Path

from django.apps import apps

ENVELOPE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "envelope.v1.json"


class UnknownContract(LookupError):
    """No installed app has a schema file for this event type and version."""


def schema_files() -> dict[tuple[str, int], Path]:
    """Every event schema of the installed apps, by ``(type, version)``."""
    found = {}
    for app in apps.get_app_configs():
        for path in sorted(Path(app.path).glob("**/schemas/*.v*.json")):
            event_type, _, version = path.stem.rpartition(".v")
            if path != ENVELOPE_SCHEMA and version.isdigit():
                found[(event_type, int(version))] = path
    return found


@cache
def load_schema(path: Path) -> dict:
    return json.loads(path.read_text())


def schema_for(event_type: str, version: int) -> dict:
    """The JSON Schema of one event type and version."""
    path = schema_files().get((event_type, version))
    if path is None:
        raise UnknownContract(f"no schema file for {event_type} version {version}")
    return load_schema(path)
