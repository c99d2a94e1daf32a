"""Writes to KV namespaces: validate, produce, return once this process shows the change.

Derived namespaces are written only by their derivation (which uses the store directly);
every hand edit, from the admin or the CLI, comes through here and is refused for them.
"""

from collections.abc import Callable, Iterable
from typing import Any

from .namespaces import get_namespace
from .store import KVError, KVStore
from .stores import get_store

#: Keys written per confirmed write while loading (a progress bar moves once per batch).
LOAD_BATCH = 500

Progress = Callable[..., Iterable]


def _no_progress(items: Iterable, **_) -> Iterable:
    return items


class DerivedNamespace(KVError):
    """A hand edit of a namespace whose values a derivation writes."""


class KVKeyExists(KVError):
    """Adding a key the namespace already holds."""


def _editable_store(namespace: str) -> KVStore:
    spec = get_namespace(namespace)
    if spec.derived_by:
        raise DerivedNamespace(
            f"{spec.name} is derived: its values come from {spec.derived_by}, and a hand edit "
            "would be overwritten; edit the source instead"
        )
    return get_store(namespace)


def set_entry(*, namespace: str, key: str, value: Any, editor: str) -> Any:
    """Write ``value`` under ``key``; returns the stored (cleaned, frozen) value."""
    return _editable_store(namespace).put(key, value, editor=editor)


def add_entry(*, namespace: str, key: str, value: Any, editor: str) -> Any:
    """Like :func:`set_entry`, but ``KVKeyExists`` when ``key`` is already there."""
    store = _editable_store(namespace)
    key = store.namespace.validate_key(key)
    if key in store:
        raise KVKeyExists(f"{key} already exists in {namespace}, edit it instead")
    return store.put(key, value, editor=editor)


def delete_entry(*, namespace: str, key: str, editor: str) -> None:
    """Delete ``key`` with a tombstone (``KVKeyNotFound`` when it is absent)."""
    _editable_store(namespace).delete(key, editor=editor)


def load_entries(
    *,
    namespace: str,
    entries: list[tuple[str, Any]],
    editor: str,
    replace: bool = False,
    progress: Progress = _no_progress,
) -> tuple[int, int]:
    """Write every entry that differs from the stored value; with ``replace``, also delete
    every key the entries do not name, so the namespace equals them. A key named twice
    takes its last value, as if each entry were written in turn. Returns how many keys
    were written and how many deleted.

    Every entry is validated before anything is written. ``progress`` wraps the keys
    being written and deleted, as :func:`eventplatform.cli.progress` does (its keyword
    arguments: ``total``, ``what``, ``unit``).
    """
    store = _editable_store(namespace)
    spec = store.namespace
    cleaned = {spec.validate_key(key): spec.validate_value(value) for key, value in entries}
    current = store.snapshot()
    changed = [(key, value) for key, value in cleaned.items() if current.get(key) != value]
    batch: list[tuple[str, Any]] = []
    for entry in progress(changed, total=len(changed), what=f"writing {namespace}", unit="key"):
        batch.append(entry)
        if len(batch) == LOAD_BATCH:
            store.put_many(batch, editor=editor)
            batch = []
    if batch:
        store.put_many(batch, editor=editor)
    doomed = sorted(set(current) - cleaned.keys()) if replace else []
    for key in progress(doomed, total=len(doomed), what=f"deleting from {namespace}", unit="key"):
        store.delete(key, editor=editor)
    return len(changed), len(doomed)
