"""The KV editor under ``/admin/kv/``; every page is staff-only through ``admin_view``."""

from django.contrib import admin
from django.urls import path

from . import admin_views

app_name = "kvadmin"


def _staff(view):
    return admin.site.admin_view(view)


urlpatterns = [
    path("", _staff(admin_views.index), name="index"),
    path("<str:namespace>/", _staff(admin_views.entries), name="entries"),
    path("<str:namespace>/add/", _staff(admin_views.add), name="add"),
    path("<str:namespace>/<str:key>/", _staff(admin_views.change), name="change"),
    path("<str:namespace>/<str:key>/delete/", _staff(admin_views.delete), name="delete"),
    path("<str:namespace>/<str:key>/history/", _staff(admin_views.history), name="history"),
]
