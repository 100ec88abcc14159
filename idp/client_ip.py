"""The client's address: the one allauth's rate limits key on, for audit rows, logs and metrics.

X-Forwarded-For is honoured only when IDP_TRUSTED_PROXY_COUNT (ALLAUTH_TRUSTED_PROXY_COUNT) is
set, a trusted header only when ALLAUTH_TRUSTED_CLIENT_IP_HEADER is; otherwise REMOTE_ADDR, so
no header can spoof it. Asked of allauth's adapter, the public way to the same answer.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest


def client_ip(request: HttpRequest | None) -> str | None:
    """The address of `request`'s client, or None when there is no request or no address."""
    if request is None:
        return None
    # Imported here: the logging configuration loads this module before the apps are ready.
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter(request).get_client_ip(request) or None
    except PermissionDenied:  # no address to be had: nothing to record
        return None
    except ImproperlyConfigured:
        # A forwarded chain shorter than the trusted proxy count: trust none of it. (allauth's
        # own rate limits refuse such a request; a log line or an audit row still gets written.)
        return request.META.get("REMOTE_ADDR") or None
