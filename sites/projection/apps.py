from django.apps import AppConfig


class InstalledAppsConfig(AppConfig):
    """The installed-apps projection, a Django app of its own inside ``sites``.

    Its label, ``installed_apps``, is what ``eventplatform.routers`` recognises: every model
    of this app lives on the ``projections`` database (read from its replica), and no
    other model does. Named after what it holds, as are its API (``/api/installed-apps``)
    and its consumer (``project_installed_apps``); Django ships no app of that label.
    """

    name = "sites.projection"
    label = "installed_apps"
    verbose_name = "Installed apps (projection)"
