"""Settings of the demo relying party: an app that signs its users in with the company IdP.

Everything comes from the environment; the defaults match `make demo` (IdP on
http://127.0.0.1:8000, this app on http://127.0.0.1:8001). The client credentials are read from
`$DEMO_DATA_DIR/client.json`, written by the IdP's `manage.py register_demo_client` (never in git).
This is a loopback development demo: it runs with DEBUG and plain http.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DEMO_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# --- The identity provider and this app's registration there
DEMO_BASE_URL = os.environ.get("DEMO_BASE_URL", "http://127.0.0.1:8001").rstrip("/")
CLIENT_FILE = DATA_DIR / "client.json"
_registration = json.loads(CLIENT_FILE.read_text()) if CLIENT_FILE.exists() else {}
IDP_ISSUER = (
    os.environ.get("DEMO_IDP_ISSUER") or _registration.get("issuer") or "http://127.0.0.1:8000"
).rstrip("/")
OIDC_CLIENT_ID = os.environ.get("DEMO_CLIENT_ID") or _registration.get("client_id", "")
OIDC_CLIENT_SECRET = os.environ.get("DEMO_CLIENT_SECRET") or _registration.get("client_secret", "")
OIDC_PROVIDER_ID = "company"


def _secret_key() -> str:
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("DEMO_SECRET_KEY") or _secret_key()
DEBUG = os.environ.get("DEMO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "demo.views.demo_context",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "demo.sqlite3",
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Sessions in the database, so a back-channel logout can end one from another request.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Cookies are per host, not per port: the IdP on the same 127.0.0.1 uses idp_session/idp_csrf.
SESSION_COOKIE_NAME = "demo_session"
CSRF_COOKIE_NAME = "demo_csrf"
SESSION_COOKIE_SAMESITE = "Lax"

AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
LOGIN_URL = "/"
LOGIN_REDIRECT_URL = "/"

# --- django-allauth: sign in with the company IdP only (its `openid_connect` provider)
SOCIALACCOUNT_ONLY = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = True  # the refresh token, for the "Refresh tokens" button
SOCIALACCOUNT_ADAPTER = "demo.adapter.DemoSocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,  # the IdP requires PKCE (RFC 9700 §2.1.1)
        "APPS": [
            {
                "provider_id": OIDC_PROVIDER_ID,
                "name": "Company",
                "client_id": OIDC_CLIENT_ID,
                "secret": OIDC_CLIENT_SECRET,
                "settings": {
                    "server_url": IDP_ISSUER,
                    "token_auth_method": "client_secret_basic",
                    "scope": ["openid", "profile", "email"],
                },
            }
        ],
    }
}

STATIC_URL = "static/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
