"""Checks for the directory: passwords never cross the network in the clear (deploy), and the
login attributes are attribute names (they are written into the sign-in filter as they are)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


@register(Tags.security, deploy=True)
def check_directory_tls(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    url = settings.IDP_LDAP_URL
    if not url:
        return []
    parts = urlsplit(url)
    if parts.scheme == "ldaps" or settings.IDP_LDAP_START_TLS:
        return []
    if parts.scheme == "ldapi" or (parts.hostname or "") in LOOPBACK_HOSTS:
        return []
    return [
        Warning(
            "IDP_LDAP_URL is plain ldap:// without IDP_LDAP_START_TLS: every directory "
            "password would cross the network in the clear.",
            hint="Use ldaps:// or set IDP_LDAP_START_TLS=1 (and IDP_LDAP_CA_FILE).",
            id="directory.W001",
        )
    ]


# RFC 4512 §1.4: an attribute description is a keystring (a letter, then letters, digits and
# hyphens) or a numeric OID.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+")


@register()
def check_login_attributes(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    bad = [
        attr
        for attr in settings.IDP_LDAP_LOGIN_ATTRIBUTES
        if attr.strip() and not ATTRIBUTE_NAME.fullmatch(attr.strip())
    ]
    if not bad:
        return []
    return [
        Error(
            f"IDP_LDAP_LOGIN_ATTRIBUTES holds what is not an LDAP attribute name: {bad!r}.",
            hint="Comma-separated attribute names, e.g. mail,userPrincipalName.",
            id="directory.E001",
        )
    ]
