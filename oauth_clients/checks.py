"""System checks: the provider's security invariants fail `manage.py check --deploy` loudly.

Settings only: a signing key is configured, PKCE is required, the implicit and password grants
are off (RFC 9700 §2.1.1, §2.1.2, §2.4), tokens are stored hashed and refresh tokens rotate
with reuse detection (RFC 9700 §4.14.2), and the cache is shared by every worker process. One
database check (run by `migrate` and `check --database`): every ES256 client has an EC key to
sign with.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register
from oauth2_provider.settings import oauth2_settings


@register(Tags.security, deploy=True)
def check_provider_security(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    errors += key_store_errors()
    if not oauth2_settings.OIDC_RSA_PRIVATE_KEY and not _rsa_keys_in_database():
        errors.append(
            Error(
                "No ID-token signing key is configured.",
                hint="Set IDP_OIDC_PRIVATE_KEY_FILE (or IDP_OIDC_PRIVATE_KEY), or put a key in "
                "IDP_SIGNING_KEY_DIR with `manage.py rotate_signing_key`.",
                id="oauth_clients.E001",
            )
        )
    if oauth2_settings.PKCE_REQUIRED is not True:
        errors.append(
            Error(
                "PKCE is not required for every client (OAUTH2_PROVIDER['PKCE_REQUIRED']).",
                hint="RFC 9700 §2.1.1: keep PKCE_REQUIRED = True; exempt a legacy confidential "
                "client with its own `require_pkce` flag instead.",
                id="oauth_clients.E002",
            )
        )
    for gate, grant, clause in (
        ("COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT", "implicit", "§2.1.2"),
        ("COMPLIANT_BCP_RFC9700_PASSWORD_GRANT", "password", "§2.4"),
    ):
        if not getattr(oauth2_settings, gate):
            errors.append(
                Error(
                    f"The {grant} grant is enabled ({gate} is off).",
                    hint=f"RFC 9700 {clause}: set OAUTH2_PROVIDER['{gate}'] = True.",
                    id="oauth_clients.E003",
                )
            )
    if not oauth2_settings.COMPLIANT_BCP_RFC9700_PKCE_METHOD:
        errors.append(
            Error(
                'The PKCE "plain" method is accepted.',
                hint="RFC 9700 §2.1.1: set COMPLIANT_BCP_RFC9700_PKCE_METHOD = True.",
                id="oauth_clients.E004",
            )
        )
    if not oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE:
        errors.append(
            Error(
                "Tokens are stored in clear.",
                hint="Set COMPLIANT_BCP_RFC9700_TOKEN_STORAGE = True (only hashes are stored).",
                id="oauth_clients.E005",
            )
        )
    if not (
        oauth2_settings.ROTATE_REFRESH_TOKEN and oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION
    ):
        errors.append(
            Error(
                "Refresh tokens do not rotate with reuse detection.",
                hint="RFC 9700 §4.14.2: ROTATE_REFRESH_TOKEN and REFRESH_TOKEN_REUSE_PROTECTION "
                "must both be True.",
                id="oauth_clients.E006",
            )
        )
    return errors


def _rsa_keys_in_database() -> bool:
    from django.conf import settings

    return getattr(settings, "IDP_SIGNING_KEY_STORE", "") == "database" and "RS256" not in getattr(
        settings, "IDP_SIGNING_KEYS_FROM_ENVIRONMENT", ()
    )


def key_store_errors() -> list[Error]:
    """The database key store needs a well-formed key-encryption key (oauth_clients/key_store.py).
    The value is never quoted in the message."""
    from django.conf import settings

    from oauth_clients.key_store import encryption_key_errors

    if getattr(settings, "IDP_SIGNING_KEY_STORE", "") != "database":
        return []
    problems = encryption_key_errors()
    if not problems:
        return []
    return [
        Error(
            "The signing keys are kept in the database but cannot be read or written: "
            + "; ".join(problems)
            + ".",
            hint='Set IDP_KEY_ENCRYPTION_KEY to a Fernet key (python -c "from '
            'cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"), '
            "the same in every process; keep the previous one after it during a change.",
            id="oauth_clients.E010",
        )
    ]


@register(Tags.database)
def check_database_signing_keys(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Error]:
    """With the database key store, an RS256 key is active and every published key decrypts
    with the configured key-encryption key. A database check (`migrate`, `check --database`)."""
    from django.db import DatabaseError

    from oauth_clients.key_store import KeyStoreUnreadable, database_algorithms, load_ring

    if not databases or not database_algorithms() or key_store_errors():
        return []
    try:
        ring = load_ring()
    except DatabaseError:  # before the first migration
        return []
    except KeyStoreUnreadable as exc:
        return [
            Error(
                str(exc),
                hint="Every process needs the IDP_KEY_ENCRYPTION_KEY the keys were stored with "
                "(listed after a new one while it changes).",
                id="oauth_clients.E011",
            )
        ]
    if "RS256" in database_algorithms() and not ring.signing("RS256"):
        return [
            Error(
                "No RS256 signing key is active in the database.",
                hint="Run `manage.py rotate_signing_key --auto` (it creates the first key, or "
                "imports the key directory's).",
                id="oauth_clients.E012",
            )
        ]
    return []


@register(Tags.database)
def check_client_signing_keys(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Error]:
    """Every registered client can have its ID tokens signed: an ES256 client needs an EC key.

    The client forms refuse ES256 without an EC key, but the key can be removed afterwards
    (a deploy without IDP_OIDC_EC_PRIVATE_KEY_FILE); such a client's sign-ins would then fail at
    the token endpoint. A database check: it runs with `migrate` (the deploy's migrate job) and
    `manage.py check --database default`.
    """
    from django.db import DatabaseError

    from oauth_clients.key_store import KeyStoreUnreadable, signing_algorithms
    from oauth_clients.keys import ES256
    from oauth_clients.models import Client

    if not databases:
        return []  # Django passes `databases` only when database checks are asked for
    try:
        if ES256 in signing_algorithms():
            return []
    except (KeyStoreUnreadable, DatabaseError):
        return []  # reported by check_database_signing_keys
    try:
        client_ids = list(
            Client.objects.using(databases[0])
            .filter(algorithm=ES256)
            .order_by("client_id")
            .values_list("client_id", flat=True)[:6]
        )
    except DatabaseError:  # before the first migration: no clients yet
        return []
    if not client_ids:
        return []
    shown = ", ".join(client_ids[:5]) + (", ..." if len(client_ids) > 5 else "")
    return [
        Error(
            f"Clients sign ID tokens with ES256 but no EC key is configured: {shown}.",
            hint="Configure IDP_OIDC_EC_PRIVATE_KEY_FILE (or a key in IDP_SIGNING_KEY_DIR/ec, "
            "`manage.py rotate_signing_key --algorithm ES256`), or switch these clients to "
            "RS256 on their admin page.",
            id="oauth_clients.E007",
        )
    ]


@register(Tags.security, Tags.caches, deploy=True)
def check_shared_cache(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The default cache is one for every worker process of this instance.

    allauth records each accepted TOTP code in the cache (RFC 6238 §5.2: a code is accepted
    once) and counts its rate limits there. A process's own memory (LocMemCache) holds them
    once per worker: a code signs in once per worker, and a limit of N bites only after N per
    worker. A cache that keeps nothing (DummyCache) accepts a code any number of times and
    counts nothing, with one worker too. The workers are counted as deploy/gunicorn.conf.py
    counts them (idp/web_workers.py), so run the check with the web server's environment.
    """
    from django.core.cache import caches
    from django.core.cache.backends.dummy import DummyCache
    from django.core.cache.backends.locmem import LocMemCache

    from idp.web_workers import web_worker_count

    cache = caches["default"]
    hint = (
        "Set REDIS_URL (or remove the CACHES override: without Redis idp/settings.py uses the "
        "database cache, which every worker and replica shares)."
    )
    if isinstance(cache, DummyCache):
        return [
            Error(
                "The default cache keeps nothing: used TOTP codes are accepted again and "
                "rate limits never bite.",
                hint=hint,
                id="oauth_clients.E009",
            )
        ]
    workers = web_worker_count()
    if isinstance(cache, LocMemCache) and workers > 1:
        return [
            Error(
                f"The default cache is each process's own memory and {workers} workers will "
                "run: each accepts a used TOTP code again and keeps its own rate-limit counts.",
                hint=hint,
                id="oauth_clients.E008",
            )
        ]
    return []
