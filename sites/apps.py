from django.apps import AppConfig


class SitesConfig(AppConfig):
    """The MetaSite source of truth: sites, their installed apps, and their events.

    Labelled ``metasite``, not ``sites``: ``django.contrib.sites`` (needed by allauth,
    flatpages, redirects and sitemaps) owns the label ``sites``, and two apps may not share
    one. The label names the service this app is (the "MetaSite" source of truth), so the
    model permissions read ``metasite.change_site`` and ``metasite.delete_site``. The tables
    keep the names the old label gave them (``sites_site``, ``sites_appinstallation``):
    existing databases keep their data where it is.
    """

    name = "sites"
    label = "metasite"
    verbose_name = "Sites"

    def ready(self):
        from . import checks  # noqa: F401 - registers the label check
