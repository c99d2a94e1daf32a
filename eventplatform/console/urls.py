"""``/admin/console/``: the page and the DLQ actions, each staff-only through ``admin_view``."""

from django.contrib import admin
from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("", admin.site.admin_view(views.console), name="index"),
    path(
        "dlq/<str:topic>/<str:action>/",
        admin.site.admin_view(views.dead_letter_action),
        name="dlq-action",
    ),
]
