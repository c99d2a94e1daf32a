"""Writes to KV namespaces: validate, produce, return once this process shows the change."""

from typing import Any

from .store import get_store


def set_entry(*, namespace: str, key: str, value: Any, editor: str) -> Any:
    """Write ``value`` under ``key``; returns the stored (cleaned, frozen) value."""
    return get_store(namespace).put(key, value, editor=editor)


def delete_entry(*, namespace: str, key: str, editor: str) -> None:
    """Delete ``key`` with a tombstone (``KVKeyNotFound`` when it is absent)."""
    get_store(namespace).delete(key, editor=editor)


def load_entries(*, namespace: str, entries: list[tuple[str, Any]], editor: str) -> int:
    """Write every entry that differs from the stored value; returns how many were written.

    Every entry is validated before anything is written.
    """
    store = get_store(namespace)
    spec = store.namespace
    cleaned = [(spec.validate_key(key), spec.validate_value(value)) for key, value in entries]
    current = store.snapshot()
    changed = [(key, value) for key, value in cleaned if current.get(key) != value]
    if changed:
        store.put_many(changed, editor=editor)
    return len(changed)
