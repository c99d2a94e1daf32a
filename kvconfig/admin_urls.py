"""The KV editor under ``/admin/kv/``: staff only, through ``admin_view``, and then the
configuration's own permissions: reading needs ``view_configuration``, writing
``change_configuration`` (see ``kvconfig.models``)."""

from django.contrib import admin
from django.urls import path

from . import admin_views

app_name = "kvadmin"

VIEW = "kvconfig.view_configuration"
CHANGE = "kvconfig.change_configuration"


def _needs(permission: str, view):
    def checked(request, *args, **kwargs):
        if not request.user.has_perm(permission):
            return admin_views.forbidden(request, permission)
        return view(request, *args, **kwargs)

    return admin.site.admin_view(checked)


urlpatterns = [
    path("", _needs(VIEW, admin_views.index), name="index"),
    path("<str:namespace>/", _needs(VIEW, admin_views.entries), name="entries"),
    path("<str:namespace>/add/", _needs(CHANGE, admin_views.add), name="add"),
    path("<str:namespace>/<str:key>/", _needs(CHANGE, admin_views.change), name="change"),
    path("<str:namespace>/<str:key>/delete/", _needs(CHANGE, admin_views.delete), name="delete"),
    path("<str:namespace>/<str:key>/history/", _needs(VIEW, admin_views.history), name="history"),
]
