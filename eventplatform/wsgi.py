"""WSGI entry point for the read-API process type (gunicorn with several workers)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventplatform.settings")
application = get_wsgi_application()
