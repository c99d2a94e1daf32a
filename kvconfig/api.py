"""``/api/kv``: namespaces and their entries, served from this process's in-memory stores."""

from typing import Any

from ninja import Router, Schema
from ninja.errors import HttpError

from eventplatform.errors import responses

from . import selectors
from .namespaces import UnknownNamespace
from .schema import thaw
from .store import KVError

router = Router()


class NamespaceOut(Schema):
    name: str
    topic: str
    description: str
    ready: bool
    entries: int | None


class EntriesOut(Schema):
    namespace: str
    entries: dict[str, Any]


class EntryOut(Schema):
    namespace: str
    key: str
    value: dict[str, Any]


def _answer(read):
    """Unknown namespace → 404; a store that cannot catch up → 503, never a hang or a 500."""
    try:
        return read()
    except UnknownNamespace as error:
        raise HttpError(404, str(error)) from None
    except KVError as error:
        raise HttpError(503, str(error)) from None


@router.get("", response=responses({200: list[NamespaceOut]}), summary="KV namespaces")
def list_namespaces(request):
    return [
        NamespaceOut(
            name=status.namespace.name,
            topic=status.namespace.topic,
            description=status.namespace.description,
            ready=status.ready,
            entries=status.entries,
        )
        for status in selectors.namespace_statuses()
    ]


@router.get(
    "/{namespace}",
    response=responses({200: EntriesOut}, 404, 503),
    summary="Every entry of a namespace",
)
def list_entries(request, namespace: str):
    entries = _answer(lambda: selectors.list_entries(namespace=namespace))
    return EntriesOut(namespace=namespace, entries={key: thaw(value) for key, value in entries})


@router.get(
    "/{namespace}/{key}",
    response=responses({200: EntryOut}, 404, 503),
    summary="One entry of a namespace",
)
def get_entry(request, namespace: str, key: str):
    value = _answer(lambda: selectors.get_entry(namespace=namespace, key=key))
    if value is None:
        raise HttpError(404, f"no key {key!r} in namespace {namespace!r}")
    return EntryOut(namespace=namespace, key=key, value=thaw(value))
