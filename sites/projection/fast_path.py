"""Runs an operation whose one parameter is a UUID in its path without ninja's per-request work.

For each request django-ninja builds a provisional response, validates the path through a
pydantic model and inspects what the view returned: on the read API's hottest operation
that costs about as much CPU as the look-up it serves. :func:`uuid_path_fast_path`, applied
with ``ninja.decorators.decorate_view``, keeps ninja for everything else (routing, the
OpenAPI document, every error answer) and calls the view straight away in the common case
only: a canonical UUID in the path and a caller whom one of the operation's own
authenticators accepts. Any other request goes through ninja unchanged, so every answer,
the refusals included, is the one ninja gives.
"""

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

#: The form ``str(uuid)`` prints (either case): what ninja's validation turns into the same
#: UUID. Other spellings it may accept or refuse are left to it.
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def uuid_path_fast_path(name: str) -> Callable:
    """A ``decorate_view`` decorator for an operation whose one parameter is the UUID
    ``name`` in its path and whose view returns an ``HttpResponse`` or raises."""

    def decorate(run: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        operation = run.__self__  # decorate_view hands over the operation's bound run
        view = operation.view_func

        def run_directly(request: HttpRequest, **path: str) -> HttpResponseBase:
            raw = path.get(name)
            if (
                len(path) != 1
                or raw is None
                or operation.throttle_objects
                or not _CANONICAL_UUID.fullmatch(raw)
                or not _authenticated(operation, request)
            ):
                return run(request, **path)
            try:
                return view(request, **{name: uuid.UUID(raw)})
            except Exception as error:
                return operation.api.on_exception(request, error)

        return run_directly

    return decorate


def _authenticated(operation, request: HttpRequest) -> bool:
    """Whether one of the operation's authenticators accepts the caller, as ninja asks
    them (first truthy answer wins, and becomes ``request.auth``). A refusal, or an
    authenticator that raises, is left to ninja to answer."""
    for authenticate in operation.auth_callbacks:
        try:
            identity = authenticate(request)
        except Exception:
            return False
        if identity:
            request.auth = identity
            return True
    return False
