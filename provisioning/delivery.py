"""Sending: one `ProvisioningDelivery` row per person and app, run by the background worker.

Rows are queued after commit (`queue_delivery`); the worker's task (`deliver_provisioning`)
decides from the state then what the app needs (provisioning/planning.py) and sends it through
the safe sender (provisioning/sender.py): POST /Users for a joiner (a 409 means the app already
has that userName: it is looked up and linked), PUT /Users/{id} for a mover, PATCH active=false
(or DELETE) for a leaver. Failures worth retrying (network, 5xx, 429, an unreadable answer)
are retried with backoff (`IDP_PROVISIONING_RETRY_SECONDS`), then marked failed. Every attempt
is audited; the rows are the per-app delivery log in the admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import outbound
from provisioning import crypto, resources, sender
from provisioning.models import ProvisionedUser, ProvisioningDelivery, ScimTarget
from provisioning.planning import Change, plan_user, target_is_live

logger = logging.getLogger(__name__)

Status = ProvisioningDelivery.Status
Action = ProvisioningDelivery.Action


@dataclass(frozen=True)
class Outcome:
    """What one attempt achieved."""

    done: bool
    action: str
    status_code: int | None = None
    error: str = ""
    retryable: bool = False


# --- Queueing ---------------------------------------------------------------------------------


def queue_delivery(*, target: ScimTarget, user: Any, reason: str) -> ProvisioningDelivery | None:
    """One delivery row for `user` at `target`, handed to the worker after commit. None when one
    is already waiting (it will read the state when it runs, so one is enough)."""
    waiting = ProvisioningDelivery.objects.filter(
        target=target, user=user, status=Status.QUEUED, attempts=0
    )
    if waiting.exists():
        return None
    delivery = ProvisioningDelivery.objects.create(
        target=target, user=user, user_repr=user.get_username(), reason=reason[:64]
    )
    transaction.on_commit(partial(enqueue_delivery, delivery_id=delivery.pk), robust=True)
    return delivery


def queue_departures(*, user: Any, reason: str) -> list[ProvisioningDelivery]:
    """`user` is being deleted here: each app holding an account of theirs is told to
    deactivate it (or delete it, as its target says). Queued inside the deleting transaction,
    because afterwards neither the person nor their ProvisionedUser links are left to plan
    from: each row carries the app's account id instead."""
    departures = []
    for provisioned in ProvisionedUser.objects.filter(user=user).select_related("target"):
        # What a leaver needs there (deactivate, delete, or nothing if already deactivated).
        change = plan_user(
            target=provisioned.target, user=user, provisioned=provisioned, may_use=False
        )
        if change is None:
            continue
        delivery = ProvisioningDelivery.objects.create(
            target=provisioned.target,
            user=user,
            user_repr=user.get_username(),
            remote_id=provisioned.remote_id,
            action=change.action,
            reason=reason[:64],
        )
        transaction.on_commit(partial(enqueue_delivery, delivery_id=delivery.pk), robust=True)
        departures.append(delivery)
    return departures


def enqueue_delivery(*, delivery_id: int, run_after: datetime | None = None) -> None:
    """Hand one delivery to the background worker (now, or not before `run_after`)."""
    job = deliver_provisioning
    if run_after is not None:
        job = job.using(run_after=run_after)
    job.enqueue(delivery_id)


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after the `attempts`-th failed attempt; None when no retry is left."""
    delays = list(settings.IDP_PROVISIONING_RETRY_SECONDS)
    if attempts < 1 or attempts > len(delays):
        return None
    return timedelta(seconds=float(delays[attempts - 1]))


# --- One attempt ------------------------------------------------------------------------------


class _Sender:
    """The SCIM requests of one attempt, with the app's URL, token and network rule."""

    def __init__(self, target: ScimTarget, token: str) -> None:
        self.target = target
        self.token = token

    def __call__(
        self,
        method: str,
        *path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> sender.ScimAnswer:
        return sender.send(
            method=method,
            base_url=self.target.base_url,
            path=("Users", *path),
            token=self.token,
            allow_private_network=self.target.client.allow_private_network,
            body=body,
            query=query,
        )


def _failed(action: str, answer: sender.ScimAnswer) -> Outcome:
    return Outcome(
        done=False,
        action=action,
        status_code=answer.status_code,
        error=answer.error or f"HTTP {answer.status_code}",
        retryable=answer.retryable,
    )


def _remember(*, target: ScimTarget, change: Change, remote_id: str, active: bool) -> None:
    ProvisionedUser.objects.update_or_create(
        target=target,
        user=change.user,
        defaults={
            "remote_id": remote_id,
            "active": active,
            "sent_hash": change.resource_hash if active else "",
        },
    )


def _replace(send: _Sender, change: Change, remote_id: str, action: str) -> Outcome:
    """PUT /Users/{id} (RFC 7644 §3.5.1): the app's copy becomes what the IdP says."""
    answer = send("PUT", remote_id, body=change.resource)
    if not answer.ok:
        return _failed(action, answer)
    _remember(target=send.target, change=change, remote_id=remote_id, active=True)
    return Outcome(done=True, action=action, status_code=answer.status_code)


def _create(send: _Sender, change: Change) -> Outcome:
    """POST /Users (RFC 7644 §3.3); on 409 the existing account of that userName is linked."""
    answer = send("POST", body=change.resource)
    if answer.status_code == 409:
        return _link(send, change)
    if not answer.ok:
        return _failed(Action.CREATE, answer)
    try:
        remote_id = resources.created_id(answer.body)
    except resources.Unreadable as error:
        return Outcome(
            done=False,
            action=Action.CREATE,
            status_code=answer.status_code,
            error=outbound.clean_text(str(error)),
            retryable=True,
        )
    _remember(target=send.target, change=change, remote_id=remote_id, active=True)
    return Outcome(done=True, action=Action.CREATE, status_code=answer.status_code)


def _link(send: _Sender, change: Change) -> Outcome:
    """RFC 7644 §3.3: 409 `uniqueness`, the app has that userName already: find it by a filter
    (§3.4.2.2), remember its id and replace it with what the IdP says."""
    user_name = change.user.get_username()
    answer = send("GET", query={"filter": resources.user_name_filter(user_name)})
    if not answer.ok:
        return _failed(Action.LINK, answer)
    try:
        remote_id = resources.found_id(answer.body, user_name=user_name)
    except resources.Unreadable as error:
        return Outcome(
            done=False,
            action=Action.LINK,
            status_code=answer.status_code,
            error=outbound.clean_text(str(error)),
            retryable=True,
        )
    if remote_id is None:
        return Outcome(
            done=False,
            action=Action.LINK,
            status_code=409,
            error="the app refused the user as a duplicate but has no user of that userName",
        )
    return _replace(send, change, remote_id, Action.LINK)


def _execute(send: _Sender, change: Change) -> Outcome:
    provisioned = change.provisioned
    if change.action == Action.CREATE or provisioned is None:
        return _create(send, change)
    if change.action == Action.UPDATE:
        outcome = _replace(send, change, provisioned.remote_id, Action.UPDATE)
        if outcome.status_code == 404:  # gone at the app: created again
            provisioned.delete()
            return _create(send, change)
        return outcome
    outcome = _end_account(send, provisioned.remote_id, change.action)
    if outcome.done and change.action == Action.DEACTIVATE:
        provisioned.active = False
        provisioned.sent_hash = ""
        provisioned.save(update_fields=["active", "sent_hash", "updated_at"])
    elif outcome.done:
        provisioned.delete()
    return outcome


def _end_account(send: _Sender, remote_id: str, action: str) -> Outcome:
    """A leaver's account at the app: PATCH active=false (`Action.DEACTIVATE`) or DELETE; a
    404 means nothing is left to end. For a provisioned person (`_execute`) and for one
    deleted here, whose delivery carries the account id (`queue_departures`)."""
    if action == Action.DEACTIVATE:
        answer = send("PATCH", remote_id, body=resources.deactivation())
    else:
        answer = send("DELETE", remote_id)
    if answer.ok or answer.status_code == 404:
        return Outcome(done=True, action=action, status_code=answer.status_code)
    return _failed(action, answer)


def _attempt(delivery: ProvisioningDelivery) -> Outcome | None:
    """One try; None when there is nothing to send."""
    target = delivery.target
    if not target_is_live(target):
        return None
    change = None
    if not delivery.remote_id:
        user = delivery.user
        if user is None:
            return None
        provisioned = ProvisionedUser.objects.filter(target=target, user=user).first()
        change = plan_user(target=target, user=user, provisioned=provisioned)
        if change is None:
            return None
    try:
        token = crypto.decrypt_token(target.token_encrypted)
    except crypto.TokenUnreadable as error:
        return Outcome(
            done=False, action=change.action if change else delivery.action, error=str(error)
        )
    send = _Sender(target, token)
    if change is None:
        return _end_account(send, delivery.remote_id, delivery.action)
    return _execute(send, change)


def attempt_delivery(*, delivery_id: int) -> str:
    """Run one delivery once and record it (row and audit); schedules the retry. Returns the
    delivery's status afterwards. Never raises for a failing app."""
    delivery = (
        ProvisioningDelivery.objects.select_related("target__client", "user")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        return "missing"
    if delivery.status not in (Status.QUEUED, Status.RETRYING):
        return str(delivery.status)
    try:
        outcome = _attempt(delivery)
    except Exception as error:  # recorded and retried, never lost
        logger.exception("provisioning delivery %s failed unexpectedly", delivery.pk)
        outcome = Outcome(
            done=False,
            action=delivery.action,
            error=f"internal error: {type(error).__name__}",
            retryable=True,
        )
    now = timezone.now()
    delivery.last_attempt_at = now
    delivery.next_attempt_at = None
    if outcome is None:
        delivery.status = Status.UNCHANGED
        delivery.finished_at = now
        delivery.save()
        return str(delivery.status)
    delivery.attempts += 1
    delivery.action = outcome.action
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outbound.clean_text(outcome.error)
    delay = retry_delay(delivery.attempts) if outcome.retryable else None
    if outcome.done:
        delivery.status = Status.SENT
        delivery.finished_at = now
    elif delay is not None and deliver_provisioning.get_backend().supports_defer:
        delivery.status = Status.RETRYING
        delivery.next_attempt_at = now + delay
    else:
        delivery.status = Status.FAILED
        delivery.finished_at = now
    delivery.save()
    target = delivery.target
    sent, failed = AuditEvent.Type.PROVISIONING_SENT, AuditEvent.Type.PROVISIONING_FAILED
    record_event(
        type=sent if outcome.done else failed,
        subject=delivery.user,
        client=target.client,
        action=outcome.action,
        status_code=outcome.status_code,
        delivery=delivery.pk,
        attempt=delivery.attempts,
        **({} if outcome.done else {"error": delivery.last_error, "final": delay is None}),
    )
    logger.info(
        "provisioning delivery %s to %s: %s %s (attempt %d, HTTP %s)",
        delivery.pk,
        target.client.client_id,
        outcome.action,
        delivery.status,
        delivery.attempts,
        outcome.status_code,
    )
    if delivery.next_attempt_at is not None:
        enqueue_delivery(delivery_id=delivery.pk, run_after=delivery.next_attempt_at)
    return str(delivery.status)


@task()
def deliver_provisioning(delivery_id: int) -> str:
    """The background task (Django's tasks API, the database queue run by `manage.py
    db_worker`): one per delivery, so a slow or failing app holds up no other."""
    return attempt_delivery(delivery_id=delivery_id)
