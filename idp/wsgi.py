"""WSGI entry point for gunicorn; an instance that could only answer errors does not start."""

import os
import sys

import django
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from idp.startup import verify_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")

try:
    # gunicorn runs no system checks: the start-up ones run here, once per process, before the
    # middleware is built (whitenoise would first warn about a missing STATIC_ROOT).
    django.setup(set_prefix=False)
    verify_ready()
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # Settings errors and idp/startup.py's are written to be read as they are: one line each,
    # no traceback. Exit status 4 is gunicorn's "App failed to load": its arbiter stops instead
    # of starting the worker again and again.
    for line in str(exc).splitlines():
        print(f"Cannot start: {line}", file=sys.stderr)
    raise SystemExit(4) from None
