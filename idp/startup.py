"""Start-up readiness: an instance that could only answer errors refuses to start, in one line.

gunicorn runs no system checks, so idp/wsgi.py calls `verify_ready()` once per process after
loading Django: the static manifest and the signing keys (below; `check --deploy` runs these
too, registered below), and the provider's security invariants with the
presence of a signing key (oauth_clients/checks.py). Settings that cannot be read at all
(DATABASE_URL, key files) already stop idp/settings.py with ImproperlyConfigured.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

COLLECTSTATIC_HINT = "run `manage.py collectstatic --noinput` (see README, Production)"


def static_manifest_errors() -> list[Error]:
    """Without debug, pages name their static files through collectstatic's manifest
    (whitenoise's CompressedManifestStaticFilesStorage, idp/settings.py STORAGES): a missing
    manifest, or one from an older release, fails every page naming a file absent from it
    ("Missing staticfiles manifest entry")."""
    storage = staticfiles_storage
    if not isinstance(storage, ManifestFilesMixin):
        return []  # debug: files keep their names, nothing has to be collected first
    location = storage.manifest_storage.path(storage.manifest_name)
    if storage.read_manifest() is None:
        return [
            Error(
                f"staticfiles manifest missing at {location}",
                hint=COLLECTSTATIC_HINT,
                id="idp.E001",
            )
        ]
    # The files collectstatic would collect now, with its default ignore patterns.
    ignore_patterns = apps.get_app_config("staticfiles").ignore_patterns
    missing = sorted(
        path
        for finder in finders.get_finders()
        for path, _ in finder.list(ignore_patterns)
        if path not in storage.hashed_files
    )
    if missing:
        return [
            Error(
                f"staticfiles manifest at {location} is from another release: it lacks "
                f"{len(missing)} file(s), such as {missing[0]}",
                hint=COLLECTSTATIC_HINT,
                id="idp.E002",
            )
        ]
    return []


def signing_key_errors() -> list[Error]:
    """Every configured signing key is a key: one that does not parse fails discovery, JWKS and
    every ID token it should sign."""
    from django.db import DatabaseError

    from oauth_clients.key_store import (
        KeyStoreUnreadable,
        database_algorithms,
        key_ring,
        published_pems,
    )
    from oauth_clients.keys import RS256, key_id

    try:
        pems = published_pems()
        no_database_key = RS256 in database_algorithms() and not key_ring().signing(RS256)
    except KeyStoreUnreadable as exc:
        return [
            Error(
                f"the signing keys in the database cannot be read: {exc}",
                hint="set IDP_KEY_ENCRYPTION_KEY to the key they were stored with",
                id="idp.E004",
            )
        ]
    except DatabaseError:
        return []  # no database yet: the readiness check says so
    if no_database_key:
        return [
            Error(
                "no ID-token signing key is active in the database",
                hint="run `manage.py rotate_signing_key --auto` once (it creates the first key "
                "or imports IDP_SIGNING_KEY_DIR's), e.g. after migrate",
                id="idp.E005",
            )
        ]
    for pem in pems:
        try:
            key_id(pem)
        except (ValueError, TypeError):
            return [
                Error(
                    "an ID-token signing key is not a PEM private key (RSA, or EC P-256 for ES256)",
                    hint="check IDP_OIDC_PRIVATE_KEY(_FILE), IDP_OIDC_EC_PRIVATE_KEY(_FILE) and "
                    "the files in IDP_SIGNING_KEY_DIR",
                    id="idp.E003",
                )
            ]
    return []


def startup_errors() -> list[Error]:
    """The checks of this module (what `check --deploy` adds to oauth_clients' own)."""
    return [*static_manifest_errors(), *signing_key_errors()]


@register(Tags.staticfiles, Tags.security, deploy=True)
def check_ready_to_serve(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """What idp/wsgi.py refuses to start without: the static manifest of this release and
    signing keys that parse. Deploy-only: collectstatic itself runs the staticfiles checks,
    before there is a manifest. (Registered when idp.apps.IdpConfig is ready.)"""
    return startup_errors()


def verify_ready() -> None:
    """Raise ImproperlyConfigured, one line per problem, when this instance cannot serve."""
    from oauth_clients.checks import check_provider_security

    errors = [*check_provider_security(), *startup_errors()]
    if errors:
        raise ImproperlyConfigured(
            "\n".join(
                f"{error.msg.rstrip('.')}: {error.hint}" if error.hint else error.msg
                for error in errors
            )
        )
