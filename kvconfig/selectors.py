"""Reads of KV namespaces, all served from the process's in-memory stores."""

import json
import time
from dataclasses import dataclass
from typing import Any

from .namespaces import all_namespaces, get_namespace
from .schema import Namespace
from .store import KVError
from .stores import get_store


@dataclass(frozen=True)
class NamespaceStatus:
    """A namespace as the admin index and ``GET /api/kv`` show it."""

    namespace: Namespace
    ready: bool
    entries: int | None
    problem: str


def namespace_statuses(*, wait: float = 5) -> list[NamespaceStatus]:
    """Every declared namespace with its entry count and whether its store caught up.

    Waits up to ``wait`` seconds in all (the stores catch up side by side); a store that
    cannot catch up is reported as not ready (with why) instead of failing the page.
    """
    stores = [(spec, get_store(spec.name)) for spec in all_namespaces()]
    for _, store in stores:
        store.follow()
    deadline = time.monotonic() + wait
    statuses = []
    for spec, store in stores:
        try:
            # A little for each, even past the deadline: one that caught up says so.
            store.wait_ready(max(0.01, deadline - time.monotonic()))
            statuses.append(NamespaceStatus(spec, True, len(store), ""))
        except KVError:
            problem = store.problem or "still catching up with its topic"
            statuses.append(NamespaceStatus(spec, False, None, problem))
    return statuses


def list_entries(*, namespace: str, search: str = "") -> list[tuple[str, Any]]:
    """Entries sorted by key; ``search`` keeps those whose key or value contains it."""
    snapshot = get_store(namespace).snapshot()
    needle = search.strip().casefold()
    entries = sorted(snapshot.items())
    if needle:
        entries = [
            (key, value)
            for key, value in entries
            if needle in key.casefold()
            or needle in json.dumps(value, ensure_ascii=False).casefold()
        ]
    return entries


def get_entry(*, namespace: str, key: str) -> Any:
    """The value under ``key``, or None when the namespace has no such key."""
    get_namespace(namespace)
    return get_store(namespace).get(key)
