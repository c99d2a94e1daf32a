"""The platform's settings plus ``django.contrib.sites``, as a project that also uses
allauth, flatpages, redirects or sitemaps has them."""

from eventplatform.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.sites"]  # noqa: F405
SITE_ID = 1
