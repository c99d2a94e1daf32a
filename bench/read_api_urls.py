"""The platform's URLs plus the baseline of ``bench.read_api``: a bare Django JSON view,
authenticated by the API's own bearer-token check, so both sides pay for it alike. Its
path carries a site id as the site endpoint's does, so both are asked the same way."""

from django.http import JsonResponse
from django.urls import path

from eventplatform.auth import BearerToken
from eventplatform.urls import urlpatterns as platform_urlpatterns

_bearer = BearerToken()


def bare_json(request, site_id):
    if not _bearer(request):
        return JsonResponse({"detail": "authentication required"}, status=401)
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/bare-json/<uuid:site_id>", bare_json), *platform_urlpatterns]
