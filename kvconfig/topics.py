"""KV topics: one compacted topic per namespace, declared when the namespaces are."""

from . import namespaces  # noqa: F401 - importing declares every namespace's topic
