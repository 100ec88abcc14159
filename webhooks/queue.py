"""From an audit event to the deliveries of the subscribers that want it: the receiver of
`accounts.audit.event_published`.

One `Delivery` row per subscriber, in the transaction that wrote the audit row (an event that
is rolled back is never announced), and after commit one background task per row
(webhooks/delivery.py). Without a subscriber for the event's type it costs no query
(webhooks/subscriptions.py).
"""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from django.db import transaction

from accounts.models import AuditEvent
from webhooks.delivery import enqueue_delivery
from webhooks.events import EVENT_TYPES, build_payload
from webhooks.models import Delivery
from webhooks.subscriptions import subscriber_ids


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def queue_deliveries(sender: Any, *, event: AuditEvent, **_kwargs: Any) -> None:
    public_type = EVENT_TYPES.get(str(event.type))
    if public_type is None:
        return
    ids = subscriber_ids(public_type)
    if not ids:
        return
    payload = build_payload(event, public_type=public_type)
    message_id = new_message_id()
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                subscriber_id=pk,
                message_id=message_id,
                event_type=public_type,
                payload=payload,
                audit_event_id=event.pk,
            )
            for pk in ids
        ]
    )
    for delivery in deliveries:
        transaction.on_commit(partial(enqueue_delivery, delivery_id=delivery.pk))
