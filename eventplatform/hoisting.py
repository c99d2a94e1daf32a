"""A route of a nested URL conf, hoisted to the top of the URL conf.

Django finds a view by walking the URL conf in order, into each ``include`` in turn; the
API's routes sit several includes deep, so resolving one cost the read API's hottest
request about as much as serving it from memory. A hoisted copy is matched first with the
same view, the same converters and the same arguments; the original stays where it was,
for ``reverse`` and for every other request.
"""

from django.urls import URLPattern, URLResolver, path
from django.urls.resolvers import RoutePattern


def hoist(resolver: URLResolver, name: str) -> URLPattern:
    """The route named ``name`` under ``resolver`` (at any depth), as one top-level path."""
    found = _find(resolver, name, prefix="")
    if found is None:
        raise LookupError(f"no route named {name!r} under {resolver.pattern}")
    return found


def _find(entry: URLPattern | URLResolver, name: str, *, prefix: str) -> URLPattern | None:
    if not isinstance(entry.pattern, RoutePattern):
        return None  # a regex cannot be joined to a route: only path() routes are hoisted
    route = prefix + str(entry.pattern)
    if isinstance(entry, URLPattern):
        if entry.name != name:
            return None
        return path(route, entry.callback, entry.default_args)
    for child in entry.url_patterns:
        if (found := _find(child, name, prefix=route)) is not None:
            return found
    return None
