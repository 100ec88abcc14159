"""The one way to write an audit row: `record_event(type=..., request=..., actor=..., ...)`."""

from __future__ import annotations

from typing import Any

from allauth.core.internal.httpkit import get_client_ip
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from accounts.models import AuditEvent
from idp.metrics import observe_audit_event
from idp.request_log import log_audit_event


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address, the same one allauth's rate limits key on.

    X-Forwarded-For is honoured only when IDP_TRUSTED_PROXY_COUNT (ALLAUTH_TRUSTED_PROXY_COUNT)
    is set; otherwise REMOTE_ADDR, so the address cannot be spoofed by a header.
    """
    if request is None:
        return None
    try:
        return get_client_ip(request) or None
    except ImproperlyConfigured:
        # X-Forwarded-For shorter than the trusted proxy count: do not trust any of it.
        return request.META.get("REMOTE_ADDR") or None


def record_event(
    *,
    type: str,
    request: HttpRequest | None = None,
    actor: Any = None,
    subject: Any = None,
    client: Any = None,
    **extra: Any,
) -> AuditEvent:
    """Append one audit row. `actor` defaults to the signed-in user of `request`.

    `extra` must never contain secrets, tokens or passwords.
    """
    if actor is None and request is not None:
        request_user = getattr(request, "user", None)
        if request_user is not None and request_user.is_authenticated:
            actor = request_user
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else ""
    event = AuditEvent.objects.create(
        type=type,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_repr=str(actor.get_username()) if getattr(actor, "pk", None) else "",
        subject=subject if getattr(subject, "pk", None) else None,
        subject_repr=str(subject.get_username()) if getattr(subject, "pk", None) else "",
        client=client if getattr(client, "pk", None) else None,
        client_repr=str(client.client_id) if getattr(client, "pk", None) else "",
        ip=client_ip(request),
        user_agent=user_agent,
        extra=extra,
    )
    # Operations (issue 6): one JSON log line and the login/token counters per event.
    log_audit_event(event)
    observe_audit_event(event)
    return event
