from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from . import health
from .api import api
from .hoisting import hoist

api_urls = path("api/", api.urls)

urlpatterns = [
    # The read API's hottest route, matched before anything else.
    hoist(api_urls, "site_apps"),
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("admin/kv/", include("kvconfig.admin_urls")),
    path("admin/console/", include("eventplatform.console.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    api_urls,
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics_view, name="metrics"),
    path("contacts/", include("contacts.urls")),
]
