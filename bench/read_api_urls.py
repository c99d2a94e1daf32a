"""The platform's URLs plus the baseline of ``bench.read_api``: a bare Django JSON view."""

from django.http import JsonResponse
from django.urls import path

from eventplatform.urls import urlpatterns as platform_urlpatterns


def bare_json(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path("bench/bare-json", bare_json), *platform_urlpatterns]
