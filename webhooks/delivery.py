"""Sending one message to a subscriber, run by the background worker (Django's tasks API on
the database queue, `manage.py db_worker`), as back-channel logout is
(oauth_clients/oidc/backchannel.py).

Each attempt signs the stored body afresh (Standard Webhooks: `webhook-id` stays the message's,
`webhook-timestamp` is the attempt's) and POSTs it through the SSRF-safe sender
(oauth_clients/outbound.py): the address resolved once and checked (no private, loopback or
link-local address unless the subscriber may call them), connected to, no redirects (a 3xx is
a failure, never followed), bounded time and answer size. A 2xx is success; other answers,
timeouts and network errors are retried with exponential backoff
(`IDP_WEBHOOK_RETRY_SECONDS`), then the row is marked failed. A refused destination or a
redirect is not retried.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from oauth_clients import outbound
from webhooks.models import Delivery
from webhooks.secrets import SecretUnreadable, decrypt_secret
from webhooks.signing import signed_headers

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 16 * 1024
USER_AGENT = "company-idp webhooks"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str = ""
    retryable: bool = False


def send(*, delivery: Delivery) -> Outcome:
    """One POST of the delivery's body to its subscriber."""
    subscriber = delivery.subscriber
    if not subscriber.is_active:
        return Outcome(delivered=False, error="the subscriber is disabled")
    address, refusal, retryable = outbound.check_destination(
        subscriber.url, allow_private_network=subscriber.allow_private_network
    )
    if address is None:
        return Outcome(delivered=False, error=refusal, retryable=retryable)
    try:
        secret = decrypt_secret(subscriber.secret_encrypted)
    except SecretUnreadable as error:
        return Outcome(delivered=False, error=str(error))
    body = delivery.payload.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(
            secret=secret, message_id=delivery.message_id, timestamp=int(time.time()), body=body
        ),
    }
    answer = outbound.send_pinned(
        method="POST",
        uri=subscriber.url,
        address=address,
        timeout=float(settings.IDP_WEBHOOK_TIMEOUT_SECONDS),
        max_bytes=MAX_RESPONSE_BYTES,
        headers=headers,
        data=body,
    )
    status = answer.status_code
    if status is None:
        return Outcome(delivered=False, error=answer.error, retryable=True)
    if 200 <= status < 300:
        return Outcome(delivered=True, status_code=status)
    if 300 <= status < 400:
        return Outcome(
            delivered=False,
            status_code=status,
            error="answered with a redirect, which is never followed",
        )
    return Outcome(delivered=False, status_code=status, error=f"HTTP {status}", retryable=True)


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the `attempts`-th failed attempt; None when no retry is left."""
    delays = list(settings.IDP_WEBHOOK_RETRY_SECONDS)
    if attempts < 1 or attempts > len(delays):
        return None
    return timedelta(seconds=float(delays[attempts - 1]))


def enqueue_delivery(*, delivery_id: int, run_after: datetime | None = None) -> None:
    chosen = deliver_webhook
    if run_after is not None:
        chosen = chosen.using(run_after=run_after)
    chosen.enqueue(delivery_id)


def attempt_delivery(*, delivery_id: int) -> str:
    """One attempt, recorded on the row; schedules the retry. Never raises for a failing
    subscriber. Returns the row's status afterwards."""
    delivery = Delivery.objects.select_related("subscriber").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status in (Delivery.Status.SENT, Delivery.Status.FAILED):
        return str(delivery.status)
    try:
        outcome = send(delivery=delivery)
    except Exception as error:  # recorded and retried, never lost
        logger.exception("webhook delivery %s failed unexpectedly", delivery.pk)
        outcome = Outcome(
            delivered=False, error=f"internal error: {type(error).__name__}", retryable=True
        )
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outbound.clean_text(outcome.error)
    delivery.next_attempt_at = None
    delay = retry_delay(delivery.attempts) if outcome.retryable else None
    if outcome.delivered:
        delivery.status = Delivery.Status.SENT
        delivery.finished_at = now
    elif delay is not None and deliver_webhook.get_backend().supports_defer:
        delivery.status = Delivery.Status.RETRYING
        delivery.next_attempt_at = now + delay
    else:
        delivery.status = Delivery.Status.FAILED
        delivery.finished_at = now
    delivery.save(
        update_fields=[
            "attempts",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "status",
            "finished_at",
        ]
    )
    logger.info(
        "webhook delivery %s (%s) to subscriber %s: %s (attempt %d, HTTP %s)",
        delivery.pk,
        delivery.event_type,
        delivery.subscriber_id,
        delivery.status,
        delivery.attempts,
        outcome.status_code,
    )
    if delivery.next_attempt_at is not None:
        enqueue_delivery(delivery_id=delivery.pk, run_after=delivery.next_attempt_at)
    return str(delivery.status)


@task()
def deliver_webhook(delivery_id: int) -> str:
    """The background task: one per delivery, so a slow subscriber holds up no other."""
    return attempt_delivery(delivery_id=delivery_id)
