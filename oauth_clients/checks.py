"""System checks: the provider's security invariants fail `manage.py check --deploy` loudly.

Settings only (no database): a signing key is configured, PKCE is required, the implicit and
password grants are off (RFC 9700 §2.1.1, §2.1.2, §2.4), tokens are stored hashed and refresh
tokens rotate with reuse detection (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, register
from oauth2_provider.settings import oauth2_settings


@register(Tags.security, deploy=True)
def check_provider_security(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    if not oauth2_settings.OIDC_RSA_PRIVATE_KEY:
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
