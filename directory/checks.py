"""Deploy checks for the directory: passwords never cross the network in the clear."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

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
