"""The one way to write an audit row: `record_event(type=..., request=..., actor=..., ...)`."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from accounts.models import AuditEvent
from idp.client_ip import client_ip
from idp.metrics import observe_audit_event
from idp.request_log import log_audit_event

# Sent once per written audit row (keyword `event`), after the JSON line and the counters. The
# audit rows are the change feed of apps above the people's floor that must hear about changes
# they may not be imported by (outbound provisioning: provisioning/receivers.py); a receiver
# only notes what to do after commit and never writes in the sender's transaction.
audit_event_published = Signal()


def record_event(**fields: Any) -> AuditEvent:
    """Append one audit row: `build_event(**fields)` (its parameters: `type`, `request`,
    `actor`, `subject`, `client` and the row's `extra`), written and published."""
    event = build_event(**fields)
    event.save(force_insert=True)
    publish_event(event)
    return event


def build_event(
    *,
    type: str,
    request: HttpRequest | None = None,
    actor: Any = None,
    subject: Any = None,
    client: Any = None,
    **extra: Any,
) -> AuditEvent:
    """The unsaved audit row. `actor` defaults to the signed-in user of `request`; `extra` must
    never contain secrets, tokens or passwords. `record_event` writes it; a caller that writes
    it with other rows (the code exchange: oauth_clients/oidc/store.py) calls `publish_event`
    afterwards."""
    if actor is None and request is not None:
        request_user = getattr(request, "user", None)
        if request_user is not None and request_user.is_authenticated:
            actor = request_user
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else ""
    return AuditEvent(
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


def publish_event(event: AuditEvent) -> None:
    """What follows a written audit row: one JSON log line and the login/token
    counters."""
    log_audit_event(event)
    observe_audit_event(event)
    audit_event_published.send(sender=AuditEvent, event=event)
