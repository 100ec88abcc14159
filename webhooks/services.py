"""Changes to webhook subscribers and replays, each audited (accounts.audit.record_event).

Keyword-only, one transaction each; the process's subscription memo is told after commit
(webhooks/subscriptions.py). The admin and `manage.py webhooks` disable subscribers rather than
delete them, so the delivery log stays; the admin API can delete one (`delete_subscriber`: its
log goes with it, the audit rows stay, and a message still queued for it finds no row and is
dropped, webhooks/delivery.py `attempt_delivery`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import uri_rules
from webhooks import subscriptions
from webhooks.delivery import enqueue_delivery
from webhooks.events import PUBLIC_TYPES
from webhooks.models import Delivery, Subscriber
from webhooks.secrets import encrypt_secret, generate_secret


def clean_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = sorted(set(event_types))
    if not chosen:
        raise ValidationError("Choose at least one event type.", code="required")
    unknown = [name for name in chosen if name not in PUBLIC_TYPES]
    if unknown:
        raise ValidationError(
            f"Unknown event type(s): {', '.join(unknown)}.", code="unknown_event_type"
        )
    return chosen


def clean_url(url: str, *, allow_private_network: bool) -> str:
    """https (http only on loopback), and no private address unless allowed: the same rules as
    any URL the IdP itself calls (`uri_rules.metadata_url_problem`)."""
    value = url.strip()
    problem = uri_rules.metadata_url_problem(value, allow_private_network=allow_private_network)
    if problem:
        raise ValidationError(f"{value}: {problem}", code="invalid_url")
    return value


def _fields(subscriber: Subscriber) -> dict[str, Any]:
    return {
        "webhook_id": subscriber.pk,
        "webhook": subscriber.name,
        "url": subscriber.url,
        "event_types": subscriber.event_types,
        "allow_private_network": subscriber.allow_private_network,
    }


@transaction.atomic
def create_subscriber(
    *,
    name: str,
    url: str,
    event_types: Iterable[str],
    allow_private_network: bool = False,
    actor: Any,
    request: HttpRequest | None = None,
) -> tuple[Subscriber, str]:
    """A new subscriber and its secret (the only time it is returned: show it once)."""
    secret = generate_secret()
    subscriber = Subscriber.objects.create(
        name=name.strip() or url,
        url=clean_url(url, allow_private_network=allow_private_network),
        event_types=clean_event_types(event_types),
        allow_private_network=allow_private_network,
        secret_encrypted=encrypt_secret(secret),
    )
    record_event(
        type=AuditEvent.Type.WEBHOOK_CREATED, request=request, actor=actor, **_fields(subscriber)
    )
    transaction.on_commit(subscriptions.forget)
    subscriptions.forget()
    return subscriber, secret


@transaction.atomic
def update_subscriber(
    *,
    subscriber: Subscriber,
    actor: Any,
    request: HttpRequest | None = None,
    name: str | None = None,
    url: str | None = None,
    event_types: Iterable[str] | None = None,
    is_active: bool | None = None,
) -> list[str]:
    """Change the name, URL, event types or active flag; returns the fields that changed. A new
    URL passes the rules a new subscriber's does (`clean_url`)."""
    changed = []
    if name is not None and name.strip() and name.strip() != subscriber.name:
        subscriber.name = name.strip()
        changed.append("name")
    if url is not None:
        cleaned_url = clean_url(url, allow_private_network=subscriber.allow_private_network)
        if cleaned_url != subscriber.url:
            subscriber.url = cleaned_url
            changed.append("url")
    if event_types is not None:
        cleaned = clean_event_types(event_types)
        if cleaned != sorted(subscriber.event_types):
            subscriber.event_types = cleaned
            changed.append("event_types")
    if is_active is not None and is_active != subscriber.is_active:
        subscriber.is_active = is_active
        changed.append("is_active")
    if changed:
        subscriber.save(update_fields=[*changed, "updated_at"])
        record_event(
            type=AuditEvent.Type.WEBHOOK_CHANGED,
            request=request,
            actor=actor,
            fields=changed,
            **_fields(subscriber),
        )
        transaction.on_commit(subscriptions.forget)
        subscriptions.forget()
    return changed


@transaction.atomic
def rotate_subscriber_secret(
    *, subscriber: Subscriber, actor: Any, request: HttpRequest | None = None
) -> str:
    """A new signing secret, replacing the old at once; returned this once (show it once).
    Audited as a change of the field `secret` (the secret itself is never in the row)."""
    secret = generate_secret()
    subscriber.secret_encrypted = encrypt_secret(secret)
    subscriber.save(update_fields=["secret_encrypted", "updated_at"])
    record_event(
        type=AuditEvent.Type.WEBHOOK_CHANGED,
        request=request,
        actor=actor,
        fields=["secret"],
        **_fields(subscriber),
    )
    return secret


@transaction.atomic
def delete_subscriber(
    *, subscriber: Subscriber, actor: Any, request: HttpRequest | None = None
) -> None:
    """Remove a subscriber and its delivery log (audited as a change `deleted`: the audit log
    keeps what it was)."""
    fields = _fields(subscriber)
    subscriber.delete()
    record_event(
        type=AuditEvent.Type.WEBHOOK_CHANGED,
        request=request,
        actor=actor,
        change="deleted",
        **fields,
    )
    transaction.on_commit(subscriptions.forget)
    subscriptions.forget()


@transaction.atomic
def replay_delivery(
    *, delivery: Delivery, actor: Any, request: HttpRequest | None = None
) -> Delivery:
    """Send a logged message again: a new row with the same message id and body (receivers
    de-duplicate on `webhook-id`), signed afresh when sent."""
    replay = Delivery.objects.create(
        subscriber=delivery.subscriber,
        message_id=delivery.message_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
        audit_event_id=delivery.audit_event_id,
        replay_of=delivery,
        replayed_by=actor if getattr(actor, "pk", None) else None,
    )
    record_event(
        type=AuditEvent.Type.WEBHOOK_REPLAYED,
        request=request,
        actor=actor,
        delivery_id=delivery.pk,
        replay_id=replay.pk,
        message_id=delivery.message_id,
        event_type=delivery.event_type,
        **_fields(delivery.subscriber),
    )
    transaction.on_commit(partial(enqueue_delivery, delivery_id=replay.pk))
    return replay
