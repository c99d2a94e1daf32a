"""Request bounds enforced before any view runs, answered as the API's JSON errors.

``MAX_QUERY_STRING_BYTES`` (8 KiB by default): a longer query string is a 414. Daphne reads
request lines up to 1 MiB (``eventplatform.server_limits``), so those get this 414 too, and
a longer line gets the server's own 414 in the same JSON shape.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

DEFAULT_MAX_QUERY_STRING_BYTES = 8 * 1024


class QueryStringLimitMiddleware:
    """Refuse a query string over ``MAX_QUERY_STRING_BYTES`` with 414 JSON."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.limit = getattr(settings, "MAX_QUERY_STRING_BYTES", DEFAULT_MAX_QUERY_STRING_BYTES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        size = len(request.META.get("QUERY_STRING", ""))
        if size > self.limit:
            return JsonResponse(
                {
                    "detail": f"the query string is {size:,} bytes; the limit is "
                    f"{self.limit:,} bytes",
                    "limit_bytes": self.limit,
                },
                status=414,
            )
        return self.get_response(request)
