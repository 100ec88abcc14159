"""The one settings module: every value comes from the environment; defaults serve dev.

Production differs from dev only by environment values (cookiecutter-django). The issuer URL
(`IDP_ISSUER`) is the single source of truth for scheme, host and cookie security.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from email.utils import formataddr
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts an http issuer may use."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Data directory: the embedded setup keeps its database, dev secret key and signing keys here.
DATA_DIR = Path(os.environ.get("IDP_DATA_DIR", BASE_DIR / "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

# --- Issuer: one public base URL, identical in discovery, tokens and cookies.
IDP_ISSUER = os.environ.get("IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/")
_issuer = urlsplit(IDP_ISSUER)
if _issuer.scheme not in {"http", "https"} or not _issuer.hostname:
    raise ImproperlyConfigured(f"IDP_ISSUER must be an absolute http(s) URL, not {IDP_ISSUER!r}")
if _issuer.query or _issuer.fragment:
    # OpenID Connect Discovery 1.0 §3: the issuer has no query or fragment.
    raise ImproperlyConfigured("IDP_ISSUER must not contain a query or fragment")
ISSUER_IS_HTTPS = _issuer.scheme == "https"
if not ISSUER_IS_HTTPS and not is_loopback_host(_issuer.hostname):
    raise ImproperlyConfigured(
        f"IDP_ISSUER {IDP_ISSUER!r} uses http on a non-loopback host. Tokens and passwords would "
        "travel in clear: use an https issuer "
        "(http is accepted only for 127.0.0.1, [::1] and localhost)."
    )

# The embedded dev setup (http on loopback) runs in debug unless told otherwise; an https issuer
# is production and runs without debug unless told otherwise.
DEBUG = env_bool("DJANGO_DEBUG", default=not ISSUER_IS_HTTPS)


def _secret_key() -> str:
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    if key:
        if len(key) < 50:
            raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 50 characters long")
        return key
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off. Generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(64))"'
        )
    # Dev only: generate once and keep it in the data directory, never in git.
    path = DATA_DIR / "dev_secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Rotation (deploy/README.md): the previous keys stay valid for signatures until removed.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])
# Key of the client-secret hashes (oauth_clients.secrets); when unset it is derived from
# SECRET_KEY, so production sets it once and keeps it through secret-key rotations.
IDP_CLIENT_SECRET_PEPPER = os.environ.get("IDP_CLIENT_SECRET_PEPPER", "")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", [_issuer.hostname])
if DEBUG:
    # Test clients and local tools talk to "testserver"/localhost in dev.
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver", "localhost", "127.0.0.1", "[::1]"]
CSRF_TRUSTED_ORIGINS = [f"{_issuer.scheme}://{_issuer.netloc}"]

# --- Applications
INSTALLED_APPS = [
    "accounts",
    "oauth_clients",
    # The admin REST API at /api/v1/, on django-ninja.
    "adminapi",
    # The company directory (LDAP / Active Directory) as a user source.
    "directory",
    # SCIM 2.0 provisioning (above accounts and the registry; nothing below imports it).
    "scim",
    # Events out to other systems (Standard Webhooks), above accounts: it hears of audit events
    # through accounts.audit's `event_published` signal.
    "webhooks",
    # Django's admin with our site: branded, grouped, a dashboard home page (idp/admin_site.py).
    "idp.apps.IdentityAdminConfig",
    # The wiring's own checks (idp/startup.py: what a production start needs).
    "idp.apps.IdpConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    # Upstream identity providers (identity brokering, federation/): allauth's social accounts,
    # its GitHub provider, and our OpenID Connect provider (federation/upstream/) for any
    # issuer, Entra ID, Google Workspace and Okta.
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "federation",
    # allauth.usersessions with our sign-in receiver in place of allauth's (accounts/apps.py).
    "accounts.apps.UserSessionsConfig",
    "oauth2_provider",
    "csp",
    # Django's tasks API (backport) and its database queue, run by `manage.py db_worker`.
    "django_tasks",
    "django_tasks_db",
    # Outbound SCIM 2.0 provisioning to apps (above accounts and the registry).
    "provisioning",
]

MIDDLEWARE = [
    # Probes and /metrics first: they hit the pod IP over http (no host check, no SSL redirect).
    "idp.middleware.ProbeMiddleware",
    # Request id, one JSON access line and latency metrics per request (idp/request_log.py).
    "idp.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Token, revocation, introspection, userinfo, JWKS and discovery skip the browser middleware
    # below (~35% of a client-credentials request's CPU went there); see its docstring.
    "idp.middleware.MachineEndpointMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The page's language: the switcher's cookie, else the browser's Accept-Language (Django's
    # order; after sessions, before CommonMiddleware, as Django's i18n docs place it); then the
    # authorize request's `ui_locales` when the person chose nothing (idp/locale.py).
    "django.middleware.locale.LocaleMiddleware",
    "idp.locale.UILocalesMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # allauth's UserSessionsMiddleware, throttled: the session's row refreshed at most once a
    # minute (or when the address or browser changes), not on every signed-in request.
    "accounts.middleware.SessionActivityMiddleware",
    # The admin needs a second factor used in this session (accounts.mfa_policy).
    "accounts.middleware.StaffMFAMiddleware",
    # The account pages (allauth's and the security centre) are never stored by a cache.
    "accounts.middleware.AccountPagesNoStoreMiddleware",
    # An address of an upstream provider's domain typed on the sign-in form goes to that
    # provider (federation/; after the CSRF check).
    "federation.middleware.HomeRealmDiscoveryMiddleware",
]

ROOT_URLCONF = "idp.urls"
WSGI_APPLICATION = "idp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "idp.context_processors.branding",
            ],
        },
    },
]

# --- Database: SQLite file in the data directory by default, PostgreSQL in production.
try:
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'idp.sqlite3'}"),
            # Persistent connections matter on every token request (a new connection per
            # request costs more than the request's own queries).
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
except ValueError:  # unknown scheme or not a URL; never echoed, it carries the password
    raise ImproperlyConfigured(
        "DATABASE_URL is not a database URL: use postgres://USER:PASSWORD@HOST:5432/NAME "
        "(special characters percent-encoded) or sqlite:////ABSOLUTE/PATH"
    ) from None
if not DATABASES["default"]["NAME"]:
    raise ImproperlyConfigured("DATABASE_URL names no database: end it with /NAME")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and the writer overlap; a busy timeout instead of "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a per-request health check that costs no round trip (idp/db/).
    # Code that needs to know the database asks `connection.vendor`, never the ENGINE string.
    DATABASES["default"]["ENGINE"] = "idp.db.postgresql"
    # Fail fast when the server is unreachable, so /readyz turns unready instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env_int("IDP_DB_CONNECT_TIMEOUT", 3)
    )
    # Server-side parameter binding for all of Django's queries (off: no gain measured; Django
    # turns psycopg's automatic preparation off, so this alone prepares nothing).
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = env_bool(
        "IDP_DB_SERVER_SIDE_BINDING", False
    )
# The hot statements the IdP compiles itself are prepared once per connection (idp/db/).
IDP_DB_PREPARED_STATEMENTS = env_bool("IDP_DB_PREPARED_STATEMENTS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions and rate limits: Redis when REDIS_URL is set (several app processes).
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "idp",
            # Keys name this database (idp/cache_keys.py): a re-created one never meets the
            # entries of the one before it.
            "KEY_FUNCTION": "idp.cache_keys.make_key",
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 2, "SOCKET_TIMEOUT": 2},
        }
    }
    # Django's cache backend: sessions in Redis, shared by every process, no database write.
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
else:
    # Without Redis the cache is Django's database cache: every worker and every replica shares
    # it through the database, never a cache of each process's own. allauth records each
    # accepted TOTP code there (RFC 6238 §5.2: a code is accepted once) and counts its rate
    # limits there: a per-process cache would accept one code once per worker and multiply every
    # limit by the number of workers (oauth_clients/checks.py refuses such a cache with several
    # workers). `migrate` creates the table (accounts/migrations/0007_cache_table.py). Past
    # MAX_ENTRIES Django drops expired entries, then a third of the live ones (forgotten codes
    # and counts): far above what lives at once here (counts live 5 minutes at most, used codes
    # 30 seconds), and each write counts the table's rows, so not unbounded either.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "idp_cache",
            "OPTIONS": {"MAX_ENTRIES": 50_000},
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Registered clients cached for the token endpoints (oauth_clients.client_cache). Invalidated
# for every worker at once through the shared cache; on by default with Redis only (from the
# database cache, a client would cost the query it saves); 0 turns it off.
IDP_CLIENT_CACHE_SECONDS = env_int("IDP_CLIENT_CACHE_SECONDS", 300 if REDIS_URL else 0)

# --- Users and passwords
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # allauth's backend (username or email) that refuses locked accounts; one backend, so a
    # wrong password costs one hash.
    "accounts.backends.LockoutAwareBackend",
]
PASSWORD_HASHERS = [
    # Argon2id with OWASP parameters first; older hashes upgrade on the next login.
    "accounts.hashers.OWASPArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    # Hashes imported from other systems (manage.py import_users; accounts/hash_formats.py):
    # verified as they are, re-hashed with Argon2id at the first successful sign-in.
    "accounts.foreign_hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "accounts.foreign_hashers.PBKDF2BytesPasswordHasher",
    "accounts.foreign_hashers.ScryptBytesPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Per-account lock after repeated failures (on top of allauth's per-IP rate limits).
IDP_LOCKOUT_THRESHOLD = env_int("IDP_LOCKOUT_THRESHOLD", 5)
IDP_LOCKOUT_SECONDS = env_int("IDP_LOCKOUT_SECONDS", 15 * 60)

LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/"

# --- django-allauth: account flows
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    # The password forms ask "sign out everywhere else" (ticked by default).
    "change_password": "accounts.forms.ChangePasswordForm",
    "set_password": "accounts.forms.SetPasswordForm",
    "reset_password_from_key": "accounts.forms.ResetPasswordKeyForm",
    # The same work for a known and an unknown address (no answer by timing).
    "reset_password": "accounts.forms.ResetPasswordForm",
}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_EMAIL_NOTIFICATIONS = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
    "signup": "20/m/ip",
    "reauthenticate": "10/m/user",
    # Wrong user codes typed on /device (RFC 8628 §5.1), per address: then a clear refusal.
    "device_user_code": "20/15m/ip",
}
# Self sign-up is closed unless explicitly opened; when open, email verification is mandatory.
IDP_SIGNUP_OPEN = env_bool("IDP_SIGNUP_OPEN", False)
PASSWORD_RESET_TIMEOUT = env_int("IDP_PASSWORD_RESET_TIMEOUT", 60 * 60)
# Rate limits key on the real client only when a trusted proxy count is configured.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("IDP_TRUSTED_PROXY_COUNT", 0)

# --- django-allauth: MFA and user sessions
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
# allauth's MFA adapter, taking the sign-in lookup's "has a second factor" answer when it has
# one (accounts.backends reads it with the user: one statement fewer per sign-in).
MFA_ADAPTER = "accounts.mfa_policy.MFAAdapter"
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = os.environ.get("IDP_COMPANY_NAME", "Company")
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not ISSUER_IS_HTTPS
# Recovery codes are shown once, right after they are made; new ones replace them.
MFA_RECOVERY_CODES_SHOW_ONCE = True
# allauth by default stops users with two-step verification from adding an address (against
# an attacker who signs up with someone else's address and locks it with MFA). Verification is
# mandatory here, so an unverified address never signs in or takes over anything; without this
# the security centre could not add addresses for exactly the best-protected users.
MFA_ALLOW_UNVERIFIED_EMAIL = True
# Wrong codes count towards the per-account lock; a locked account gets no more guesses.
MFA_FORMS = {
    "authenticate": "accounts.forms.AuthenticateForm",
    "reauthenticate": "accounts.forms.ReauthenticateForm",
}
# --- django-allauth: upstream identity providers (federation/)
# Our rules (federation.adapter): apps built from the admin's `UpstreamProvider` rows, every
# upstream call through the SSRF-safe sender, linking only through an address verified on both
# sides, accounts created just in time only where the provider allows it.
SOCIALACCOUNT_ADAPTER = "federation.adapter.SocialAccountAdapter"
# Never link or sign in by a matching address on allauth's own terms (federation.adapter does,
# verified on both sides only).
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_AUTO_SIGNUP = True
# The upstream's tokens are used once, at sign-in, and never stored.
SOCIALACCOUNT_STORE_TOKENS = False
# A GET of a provider's sign-in URL asks to confirm with a POST (no sign-in started by a link).
SOCIALACCOUNT_LOGIN_ON_GET = False
# Connect/read timeout of each call to an upstream (the whole call: twice this at most).
IDP_UPSTREAM_TIMEOUT_SECONDS = env_int("IDP_UPSTREAM_TIMEOUT_SECONDS", 5)
USERSESSIONS_TRACK_ACTIVITY = True
# Ending a session revokes the tokens it obtained, audited (accounts.adapter).
USERSESSIONS_ADAPTER = "accounts.adapter.UserSessionsAdapter"
# Staff and superusers reach the admin only with a second factor used in the session.
IDP_STAFF_MFA_REQUIRED = env_bool("IDP_STAFF_MFA_REQUIRED", True)

# --- Background work: Django's tasks API (django-tasks backport) on the database queue; the
# worker is `manage.py db_worker` (deploy/). Back-channel logout deliveries run there
# (oauth_clients.oidc.backchannel): a short timeout, retries with exponential backoff for ~10 min.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
IDP_BACKCHANNEL_TIMEOUT_SECONDS = env_int("IDP_BACKCHANNEL_TIMEOUT_SECONDS", 5)
# Seconds before each retry: 7 retries over ~10 minutes (5 + 10 + ... + 300 = 615 s).
IDP_BACKCHANNEL_RETRY_SECONDS = [5, 10, 20, 40, 80, 160, 300]
# Webhooks (webhooks/, docs/guides/webhooks.md). Subscriber secrets are encrypted under a key
# derived (HKDF) from IDP_WEBHOOK_KEY, or from DJANGO_SECRET_KEY (and its fallbacks) when unset:
# set it in production so a secret-key rotation leaves the webhooks alone.
IDP_WEBHOOK_KEY = os.environ.get("IDP_WEBHOOK_KEY", "")
IDP_WEBHOOK_TIMEOUT_SECONDS = env_int("IDP_WEBHOOK_TIMEOUT_SECONDS", 5)
# Seconds before each retry, doubling: 9 retries over ~8.5 hours.
IDP_WEBHOOK_RETRY_SECONDS = [60, 120, 240, 480, 960, 1920, 3840, 7680, 15360]
# How stale a process's list of subscribers may be (a subscriber made elsewhere is heard of
# within this many seconds; webhooks/subscriptions.py).
IDP_WEBHOOK_SUBSCRIPTIONS_SECONDS = env_int("IDP_WEBHOOK_SUBSCRIPTIONS_SECONDS", 30)

# --- The company directory as a user source (directory/; docs/guides/ldap.md). Off unless
# IDP_LDAP_URL is set: then people sign in with their directory password (checked by a bind,
# never stored here) and `manage.py ldap_sync` mirrors users and groups.
IDP_LDAP_URL = os.environ.get("IDP_LDAP_URL", "")
# The service account that searches the directory (read-only is enough).
IDP_LDAP_BIND_DN = os.environ.get("IDP_LDAP_BIND_DN", "")
IDP_LDAP_BIND_PASSWORD = os.environ.get("IDP_LDAP_BIND_PASSWORD", "")
IDP_LDAP_USER_BASE = os.environ.get("IDP_LDAP_USER_BASE", "")
# One person by sign-in name (`%(user)s`, escaped); with `*` in its place, every person.
# Active Directory: (&(objectClass=user)(objectCategory=person)(sAMAccountName=%(user)s)).
IDP_LDAP_USER_FILTER = os.environ.get("IDP_LDAP_USER_FILTER", "(uid=%(user)s)")
# More attributes a person may type at sign-in instead of the name of the filter above, e.g.
# `mail` (their address) or Active Directory's `userPrincipalName` (alice@corp.example): the
# search then matches any of them, within the people IDP_LDAP_USER_FILTER selects, and signs in
# only when exactly one entry matches. Empty: the filter's name only.
IDP_LDAP_LOGIN_ATTRIBUTES = env_list("IDP_LDAP_LOGIN_ATTRIBUTES", [])
# Entries matching this are disabled: refused at sign-in, deactivated by the sync. OpenLDAP's
# ppolicy lock by default; Active Directory: (userAccountControl:1.2.840.113556.1.4.803:=2).
IDP_LDAP_DISABLED_FILTER = os.environ.get("IDP_LDAP_DISABLED_FILTER", "(pwdAccountLockedTime=*)")
IDP_LDAP_GROUP_BASE = os.environ.get("IDP_LDAP_GROUP_BASE", "")
# Active Directory: (objectClass=group).
IDP_LDAP_GROUP_FILTER = os.environ.get("IDP_LDAP_GROUP_FILTER", "(objectClass=groupOfNames)")
IDP_LDAP_GROUP_NAME_ATTR = os.environ.get("IDP_LDAP_GROUP_NAME_ATTR", "cn")
IDP_LDAP_GROUP_MEMBER_ATTR = os.environ.get("IDP_LDAP_GROUP_MEMBER_ATTR", "member")
# StartTLS on an ldap:// URL (ldaps:// is TLS from the start); the CA bundle that signed the
# directory's certificate (without it, the system's trust store).
IDP_LDAP_START_TLS = env_bool("IDP_LDAP_START_TLS", False)
IDP_LDAP_CA_FILE = os.environ.get("IDP_LDAP_CA_FILE", "")
# Bounds every connect and every answer: a directory that hangs costs a sign-in this long.
IDP_LDAP_TIMEOUT_SECONDS = env_int("IDP_LDAP_TIMEOUT_SECONDS", 5)
# How many entries the sync reads per page and writes per transaction.
IDP_LDAP_PAGE_SIZE = env_int("IDP_LDAP_PAGE_SIZE", 500)
# Seconds between two syncs run by the background worker (directory/tasks.py, idp/periodic.py;
# no cron needed). Only while IDP_LDAP_URL is set; 0 turns the schedule off.
IDP_LDAP_SYNC_INTERVAL = env_int("IDP_LDAP_SYNC_INTERVAL", 900)
# Directory attribute of each user field (the defaults are OpenLDAP's inetOrgPerson; Active
# Directory: sAMAccountName, employeeID, department).
IDP_LDAP_ATTR_MAP = {
    "username": os.environ.get("IDP_LDAP_ATTR_USERNAME", "uid"),
    "first_name": os.environ.get("IDP_LDAP_ATTR_FIRST_NAME", "givenName"),
    "last_name": os.environ.get("IDP_LDAP_ATTR_LAST_NAME", "sn"),
    "email": os.environ.get("IDP_LDAP_ATTR_EMAIL", "mail"),
    "employee_id": os.environ.get("IDP_LDAP_ATTR_EMPLOYEE_ID", "employeeNumber"),
    "department": os.environ.get("IDP_LDAP_ATTR_DEPARTMENT", "departmentNumber"),
    "job_title": os.environ.get("IDP_LDAP_ATTR_JOB_TITLE", "title"),
}
if IDP_LDAP_URL:
    # One more backend, asked first: it passes local accounts (break-glass administrators) to
    # the local backend without asking the directory, so they never depend on it; a directory
    # person's sign-in then costs no Argon2id run (directory/backend.py).
    AUTHENTICATION_BACKENDS.insert(0, "directory.backend.DirectoryBackend")
# Outbound SCIM provisioning (provisioning/): the apps' bearer tokens are encrypted (Fernet) with
# the first of these keys and read with any of them; without them, with a key derived (HKDF)
# from DJANGO_SECRET_KEY and its fallbacks. Generate one with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
IDP_PROVISIONING_KEYS = env_list("IDP_PROVISIONING_KEYS", [])
IDP_PROVISIONING_TIMEOUT_SECONDS = env_int("IDP_PROVISIONING_TIMEOUT_SECONDS", 10)
# Seconds before each retry of a failed SCIM request: 7 retries over ~10 minutes.
IDP_PROVISIONING_RETRY_SECONDS = [5, 10, 20, 40, 80, 160, 300]

# --- Branding (admin-editable branding comes later; these are the defaults)
# SCIM (scim/): a DELETE from a SCIM client deactivates the account (it answers 404 to SCIM
# from then on); with IDP_SCIM_HARD_DELETE the account is deleted. A request body is at most
# IDP_SCIM_MAX_BODY_BYTES (413 beyond).
IDP_SCIM_HARD_DELETE = env_bool("IDP_SCIM_HARD_DELETE", False)
IDP_SCIM_MAX_BODY_BYTES = env_int("IDP_SCIM_MAX_BODY_BYTES", 1024 * 1024)

IDP_COMPANY_NAME = os.environ.get("IDP_COMPANY_NAME", "Company")
IDP_LOGO_URL = os.environ.get("IDP_LOGO_URL", "")
IDP_SUPPORT_URL = os.environ.get("IDP_SUPPORT_URL", "")

# --- OAuth 2 / OpenID Connect provider (django-oauth-toolkit)
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth_clients.Client"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth_clients.Grant"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth_clients.AccessToken"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth_clients.RefreshToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth_clients.IDToken"
IDP_SIGNING_KEY_DIR = Path(os.environ.get("IDP_SIGNING_KEY_DIR", DATA_DIR / "signing_keys"))
# A refresh token unused for this long dies (its family's absolute lifetime is
# REFRESH_TOKEN_EXPIRE_SECONDS below); per-client values on Client override both.
IDP_REFRESH_TOKEN_IDLE_SECONDS = env_int("IDP_REFRESH_TOKEN_IDLE_SECONDS", 14 * 24 * 3600)

# --- The admin REST API (adminapi/): calls per service client (`N/s`, `N/m`, `N/h`, `N/d`), and
# the largest request body it reads (a larger one is answered 413 before anything parses it).
IDP_API_RATE_LIMIT = os.environ.get("IDP_API_RATE_LIMIT", "600/m")
IDP_API_MAX_BODY_BYTES = env_int("IDP_API_MAX_BODY_BYTES", 1024 * 1024)

# The device authorization grant (RFC 8628, oauth_clients/oidc/device.py): how long a device's
# codes live and the least seconds between its polls.
IDP_DEVICE_CODE_SECONDS = env_int("IDP_DEVICE_CODE_SECONDS", 600)
IDP_DEVICE_POLL_INTERVAL = env_int("IDP_DEVICE_POLL_INTERVAL", 5)

OAUTH2_PROVIDER = {
    # Engine wiring
    "OAUTH2_VALIDATOR_CLASS": "oauth_clients.oidc.validator.IdPOAuth2Validator",
    # oauthlib's OpenID server with our device code grant (oauth_clients/oidc/device_grant.py);
    # DOT's pre-token hook reads its own clear-text device codes, which we never store.
    "OAUTH2_SERVER_CLASS": "oauth_clients.oidc.device_grant.Server",
    "OAUTH_PRE_TOKEN_VALIDATION": [],
    # 256-bit tokens from `secrets` in one call (oauthlib's default draws 30 characters one
    # SystemRandom call at a time: ~5 % of a refresh grant's CPU in the profile).
    "ACCESS_TOKEN_GENERATOR": "oauth_clients.oidc.tokens.generate_token",
    "REFRESH_TOKEN_GENERATOR": "oauth_clients.oidc.tokens.generate_token",
    # Puts the signed-in session (user, sid, auth_time, amr) on oauthlib's request.
    "OAUTH2_BACKEND_CLASS": "oauth_clients.oidc.backend.IdPOAuthLibCore",
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": IDP_ISSUER,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": False,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": False,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    # Scopes we serve and their plain-words descriptions (consent screen), in the person's
    # language (translated when the page renders: locale/).
    "SCOPES": {
        "openid": gettext_lazy("Sign you in with your company account"),
        "profile": gettext_lazy("See your name and username"),
        "email": gettext_lazy("See your email address"),
        "groups": gettext_lazy("See the groups you belong to"),
        "offline_access": gettext_lazy("Stay signed in to the app while you are away"),
        # The admin API (adminapi/): service clients only (oauth_clients.uri_rules.ADMIN_SCOPES).
        "admin:users": gettext_lazy("Manage people and groups"),
        "admin:users:read": gettext_lazy("Read people and groups"),
        "admin:clients": gettext_lazy("Manage client apps"),
        "admin:clients:read": gettext_lazy("Read client apps"),
        "admin:audit": gettext_lazy("Read the audit log"),
        "admin:audit:read": gettext_lazy("Read the audit log"),
        "admin:integrations": gettext_lazy("Manage webhooks, SCIM tokens and app provisioning"),
        "admin:integrations:read": gettext_lazy("Read webhooks, SCIM tokens and app provisioning"),
        "admin:superusers": gettext_lazy("Grant and revoke superuser and staff status"),
    },
    "DEFAULT_SCOPES": ["openid"],
    # Lifetimes (seconds): RFC 9700 §2.2 / §4.14 short-lived access, rotating refresh tokens.
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": env_int("IDP_ACCESS_TOKEN_SECONDS", 600),
    "ID_TOKEN_EXPIRE_SECONDS": env_int("IDP_ID_TOKEN_SECONDS", 600),
    "REFRESH_TOKEN_EXPIRE_SECONDS": env_int("IDP_REFRESH_TOKEN_ABSOLUTE_SECONDS", 30 * 24 * 3600),
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    # RFC 9700 gates: PKCE S256 only, exact redirect matching, https redirect URIs, hashed tokens.
    "PKCE_REQUIRED": True,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"],
    "ALLOW_URI_WILDCARDS": False,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    # Consent: remembered per user/client/scope set by our own records (oauth_clients.Consent).
    "REQUEST_APPROVAL_PROMPT": "auto",
}

# --- Security headers. An https issuer turns on secure cookies, HSTS and SSL redirect.
SESSION_COOKIE_SECURE = ISSUER_IS_HTTPS
CSRF_COOKIE_SECURE = ISSUER_IS_HTTPS
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "__Host-idp_session" if ISSUER_IS_HTTPS else "idp_session"
CSRF_COOKIE_NAME = "__Host-idp_csrf" if ISSUER_IS_HTTPS else "idp_csrf"
SECURE_SSL_REDIRECT = ISSUER_IS_HTTPS and env_bool("IDP_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 63072000 if ISSUER_IS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = ISSUER_IS_HTTPS
SECURE_HSTS_PRELOAD = ISSUER_IS_HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# A stale or foreign form gets the branded 403 page, not Django's debug-style one.
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
# Probes and Prometheus talk plain http to the pod (answered by idp.middleware.ProbeMiddleware
# before SecurityMiddleware; listed here too so a reordering cannot redirect them).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if ALLAUTH_TRUSTED_PROXY_COUNT:
    # Behind a TLS-terminating proxy the scheme comes from the proxy only when one is trusted.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "https:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        # Authorization responses redirect to registered client URIs, so form-action stays open
        # to https: targets the browser follows after our own form posts.
        "form-action": ["'self'", "https:", "http://127.0.0.1:*", "http://localhost:*"],
    },
}

# --- Email (console by default; SMTP when EMAIL_HOST is set)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Security emails come from the company, at the issuer's host: "Company <no-reply@id.example>"
# (formataddr quotes a name with commas or other specials, RFC 5322 §3.4).
DEFAULT_FROM_EMAIL = os.environ.get(
    "DEFAULT_FROM_EMAIL", formataddr((IDP_COMPANY_NAME, f"no-reply@{_issuer.hostname}"))
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static files (whitenoise)
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("IDP_STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Operations: /metrics is answered only to a bearer token or to scrapers' networks (else 404).
IDP_METRICS_TOKEN = os.environ.get("IDP_METRICS_TOKEN", "")
IDP_METRICS_ALLOWED_CIDRS = env_list("IDP_METRICS_ALLOWED_CIDRS", [])
for _cidr in IDP_METRICS_ALLOWED_CIDRS:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"IDP_METRICS_ALLOWED_CIDRS: {_cidr!r} is not a network"
        ) from exc

# --- Internationalisation
# English when nothing else is known; the languages offered by the switcher in every page's
# footer (templates/base.html), shown in their own names. allauth, Django's admin and Django's
# forms bring their own catalogues for these; the project's strings are in locale/ (compiled by
# `make install`, checked by `make check`: idp/translations.py).
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("ja", "日本語"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice (Django's set_language view) is kept in this cookie for a year; it is
# read on the server only, and travels over https only with an https issuer.
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SECURE = ISSUER_IS_HTTPS
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Logging: never log secrets, tokens, passwords or codes.
# Requests and audit events are one JSON line each on stdout (idp/request_log.py); other logs are
# JSON too in production (IDP_LOG_FORMAT=json, the default without debug) and text in dev.
IDP_LOG_FORMAT = os.environ.get("IDP_LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            # python-json-logger, minus object-valued extras (Django logs the request object).
            "()": "idp.request_log.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "null": {"class": "logging.NullHandler"},
        "json_stdout": {
            "class": "logging.StreamHandler",
            # stdout, where the servers' logs go; stderr for manage.py's other commands, whose
            # stdout is their answer (manage.py sets IDP_LOG_STREAM).
            "stream": "ext://sys.stderr"
            if os.environ.get("IDP_LOG_STREAM") == "stderr"
            else "ext://sys.stdout",
            "formatter": "json",
        },
    },
    "root": {
        "handlers": ["json_stdout" if IDP_LOG_FORMAT == "json" else "console"],
        "level": os.environ.get("IDP_LOG_LEVEL", "INFO"),
    },
    "loggers": {
        "idp.request": {"handlers": ["json_stdout"], "level": "INFO", "propagate": False},
        "idp.audit": {"handlers": ["json_stdout"], "level": "INFO", "propagate": False},
        # Each request is logged once, by idp.request, in dev and production alike. Listing
        # `django` drops the handlers Django's default config gives it (a second console line
        # for each of its records in dev); they reach the root handler like any library's.
        "django": {"level": "INFO"},
        # pysaml2 logs the messages it handles (assertions, NameIDs) at INFO and below, and
        # xmlschema announces each schema it loads: neither belongs in the IdP's log.
        "saml2": {"level": "WARNING"},
        "xmlschema": {"level": "WARNING"},
        # runserver's own access line repeats idp.request's (gunicorn's is off, see
        # deploy/gunicorn.conf.py); so do Django's per-request 4xx warnings ("Not Found: /x").
        # Its 5xx errors, with their traceback, stay.
        "django.server": {"handlers": ["null"], "propagate": False},
        "django.request": {"level": "ERROR"},
        # DOT logs client secret hashing details at DEBUG; keep it quiet.
        "oauth2_provider": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
    },
}

# --- Signing keys: env PEM or key files; the embedded dev setup generates one on first start.
# Read here because DOT takes its keys from OAUTH2_PROVIDER; `oauth_clients.checks` fails
# `check --deploy` when none is configured.
from oauth_clients.keys import keys_from_environment, read_key_set  # noqa: E402

# Where the keys come from (oauth_clients/key_store.py, deploy/README.md "Rotating the signing
# key"): "files" (the default: the environment, else IDP_SIGNING_KEY_DIR, changed by a restart)
# or "database" (SigningKey rows encrypted under IDP_KEY_ENCRYPTION_KEY, rotated on a schedule
# by the background worker (or `manage.py rotate_signing_key --auto`), seen by every process within
# IDP_SIGNING_KEYS_REFRESH_SECONDS, no restart). A key set in the environment wins either way.
IDP_SIGNING_KEY_STORE = os.environ.get("IDP_SIGNING_KEY_STORE", "files").strip().lower()
if IDP_SIGNING_KEY_STORE not in {"files", "database"}:
    raise ImproperlyConfigured(
        f"IDP_SIGNING_KEY_STORE must be files or database, not {IDP_SIGNING_KEY_STORE!r}"
    )
_keys_in_database = IDP_SIGNING_KEY_STORE == "database"
# Fernet keys (comma-separated; the first encrypts, each decrypts). Generate one with
# `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.
IDP_KEY_ENCRYPTION_KEY = env_list("IDP_KEY_ENCRYPTION_KEY", [])
# The schedule: a key signs for IDP_SIGNING_KEY_ROTATION_SECONDS; its successor is published
# IDP_SIGNING_KEY_PREPUBLISH_SECONDS before (at least the JWKS max-age, so apps' caches hold it).
IDP_SIGNING_KEY_ROTATION_SECONDS = env_int("IDP_SIGNING_KEY_ROTATION_SECONDS", 90 * 24 * 3600)
IDP_SIGNING_KEY_PREPUBLISH_SECONDS = env_int("IDP_SIGNING_KEY_PREPUBLISH_SECONDS", 2 * 24 * 3600)
# How often the background worker takes the schedule's due steps (`rotate_signing_key --auto`'s,
# oauth_clients/tasks.py; no cron needed). Only with the database store; 0 turns it off.
IDP_SIGNING_KEY_AUTO_INTERVAL = env_int("IDP_SIGNING_KEY_AUTO_INTERVAL", 3600)
# How often a process asks the shared cache whether the database keys changed.
IDP_SIGNING_KEYS_REFRESH_SECONDS = env_int("IDP_SIGNING_KEYS_REFRESH_SECONDS", 5)
IDP_SIGNING_KEYS_FROM_ENVIRONMENT = [
    algorithm for algorithm in ("RS256", "ES256") if keys_from_environment(os.environ, algorithm)
]

# The signing key, the previous ones (published until retired) and a staged next key (published,
# not signing yet): IDP_OIDC_PRIVATE_KEY / _PREVIOUS_ / _NEXT_ (each also as _FILE) or the files
# of IDP_SIGNING_KEY_DIR (oauth_clients.keys; the rollover steps in deploy/README.md). With the
# database store the key directory is not read (nor a dev key generated in it).
_rsa_keys = read_key_set(
    key_dir=IDP_SIGNING_KEY_DIR,
    environ=os.environ,
    generate=DEBUG and not _keys_in_database,
    read_directory=not _keys_in_database,
)
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"] = _rsa_keys.current
OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEYS_INACTIVE"] = list(_rsa_keys.previous)
IDP_OIDC_NEXT_PRIVATE_KEYS = list(_rsa_keys.next)
# EC P-256 keys for clients whose algorithm is ES256 (RS256 stays the default; DOT has no ES256,
# see oauth_clients.keys). Active first; all published in JWKS. Without one, ES256 is not
# offered. IDP_OIDC_EC_PRIVATE_KEY / _PREVIOUS_ / _NEXT_ or IDP_SIGNING_KEY_DIR/ec.
_ec_keys = read_key_set(
    key_dir=IDP_SIGNING_KEY_DIR,
    environ=os.environ,
    generate=DEBUG and not _keys_in_database,
    algorithm="ES256",
    read_directory=not _keys_in_database,
)
IDP_OIDC_EC_PRIVATE_KEYS = _ec_keys.signing_and_previous
IDP_OIDC_EC_NEXT_PRIVATE_KEYS = list(_ec_keys.next)

# DOT's W008 flags `http` in ALLOWED_REDIRECT_URI_SCHEMES. We keep http for RFC 8252 §7.3 loopback
# redirects of native apps only; oauth_clients' registration validation refuses http on any other
# host, so the warning's risk is covered by our own rule.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W008"]
