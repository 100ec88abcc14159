"""The one way to write an audit row: `record_event(type=..., request=..., actor=..., ...)`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.dispatch import Signal
from django.http import HttpRequest

from accounts.models import AuditEvent
from idp.client_ip import client_ip
from idp.metrics import observe_audit_event
from idp.request_log import log_audit_event

# Who acts when no person does: a machine client (a SCIM client's token) named on every audit
# row written inside `acting_client`, including the rows the services write themselves.
_ACTING_CLIENT: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar(
    "audit_acting_client", default=None
)


@contextmanager
def acting_client(*, label: str, **extra: Any) -> Iterator[None]:
    """Audit rows written inside without an acting person record `label` as their actor
    (`actor_repr`, e.g. "scim:Okta") and carry `extra` (e.g. the token's id)."""
    token = _ACTING_CLIENT.set((label, extra))
    try:
        yield
    finally:
        _ACTING_CLIENT.reset(token)


# Sent after each audit row is written, with `event` (the saved AuditEvent), in the writer's
# transaction: how apps above this floor hear of events without `accounts` importing them (the
# webhooks app queues its deliveries from it; outbound provisioning notes whom to provision,
# provisioning/receivers.py). A receiver must be cheap (it runs on the sign-in
# and token paths) and must not write outside the transaction.
event_published = Signal()


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
    if getattr(actor, "pk", None):
        actor_repr = str(actor.get_username())
    else:
        # A service client acting through the admin API (accounts.actors.ServiceActor) is no
        # user row: it is recorded by its client id, in the text column and in `extra`.
        actor_repr = str(getattr(actor, "audit_repr", ""))
        if actor_repr and getattr(actor, "client_id", None):
            extra = {**extra, "actor_client_id": actor.client_id}
    # A SCIM client's token (scim/): rows written inside `acting_client` without an actor.
    client_actor = _ACTING_CLIENT.get()
    if client_actor is not None and not actor_repr:
        actor_repr = client_actor[0][:255]
        extra = {**client_actor[1], **extra}
    return AuditEvent(
        type=type,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_repr=actor_repr,
        subject=subject if getattr(subject, "pk", None) else None,
        subject_repr=str(subject.get_username()) if getattr(subject, "pk", None) else "",
        client=client if getattr(client, "pk", None) else None,
        client_repr=str(client.client_id) if getattr(client, "pk", None) else "",
        ip=client_ip(request),
        user_agent=user_agent,
        extra=extra,
    )


def publish_event(event: AuditEvent) -> None:
    """What follows a written audit row: one JSON log line, the login/token counters and the
    `event_published` signal."""
    log_audit_event(event)
    observe_audit_event(event)
    event_published.send(sender=AuditEvent, event=event)
