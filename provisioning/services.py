"""Outbound provisioning services: configure an app's SCIM target, queue what changed, sync.

Changes reach this app through the audit feed (provisioning/receivers.py): after commit,
`queue_user_changes` queues one delivery per person whose state at an app may have changed,
and `queue_target_sync` a whole-app reconciliation (`sync_target`) when who may use the app
changed (assignments, policy, roles, groups moved or deleted). `sync_target` is also the admin's
"sync now" and `manage.py provision sync`; `plan_target` (provisioning/planning.py) their dry run.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from django_tasks import task

from accounts.audit import record_event
from accounts.models import AuditEvent
from provisioning import crypto
from provisioning.delivery import queue_delivery
from provisioning.models import USER_ATTRIBUTES, ProvisioningDelivery, ScimTarget
from provisioning.planning import candidate_ids, plan_target, target_is_live
from provisioning.sender import base_url_problem

# The fields of a target an administrator sets (the token apart).
TARGET_FIELDS = ("base_url", "enabled", "user_attributes", "enterprise_extension", "deprovision")


def target_errors(*, target: ScimTarget, token: str | None) -> dict[str, list[str]]:
    """Form errors of a target about to be saved: the URL rules of back-channel logout URIs
    (https, http only on loopback, no private network unless the app may) and a token."""
    errors: dict[str, list[str]] = {}
    url = (target.base_url or "").strip()
    problem = (
        base_url_problem(url, allow_private_network=target.client.allow_private_network)
        if url
        else _("an app's SCIM base URL is required")
    )
    if problem:
        errors["base_url"] = [f"{url}: {problem}" if url else problem]
    unknown = sorted(set(target.user_attributes or []) - set(USER_ATTRIBUTES))
    if unknown:
        errors["user_attributes"] = [_("unknown attributes: %s") % ", ".join(unknown)]
    if not target.token_encrypted and not token:
        errors["token"] = [_("the app's SCIM bearer token is required")]
    return errors


@transaction.atomic
def save_target(
    *, target: ScimTarget, token: str | None, actor: Any, request: HttpRequest | None = None
) -> ScimTarget:
    """Create or change an app's SCIM target (audited). `token`, when given, replaces the stored
    one (encrypted: provisioning/crypto.py; never shown again). An enabled target is then
    synced in the background."""
    errors = target_errors(target=target, token=token)
    if errors:
        raise ValidationError(errors)
    target.base_url = target.base_url.strip()
    if token:
        target.token_encrypted = crypto.encrypt_token(token)
    created = target.pk is None
    target.save()
    record_event(
        type=AuditEvent.Type.PROVISIONING_CONFIGURED,
        request=request,
        actor=actor,
        client=target.client,
        created=created,
        token_changed=bool(token),
        **{name: getattr(target, name) for name in TARGET_FIELDS},
    )
    if target.enabled:
        queue_target_sync(target=target, reason="configured")
    return target


def queue_target_sync(*, target: ScimTarget, reason: str) -> None:
    """Reconcile the whole app in the background, after commit."""
    transaction.on_commit(partial(sync_target_task.enqueue, target.pk, reason[:64]), robust=True)


@transaction.atomic
def sync_target(*, target: ScimTarget, reason: str) -> list[ProvisioningDelivery]:
    """Reconcile: queue a delivery for everyone the app must create, update or deactivate
    (the dry run's list, `plan_target`). Returns the deliveries queued."""
    queued = []
    for change in plan_target(target=target):
        delivery = queue_delivery(target=target, user=change.user, reason=reason)
        if delivery is not None:
            queued.append(delivery)
    ScimTarget.objects.filter(pk=target.pk).update(last_sync_at=timezone.now())
    return queued


@task()
def sync_target_task(target_id: int, reason: str) -> int:
    """The background reconciliation of one app; returns how many deliveries it queued."""
    target = ScimTarget.objects.select_related("client").filter(pk=target_id).first()
    if target is None or not target_is_live(target):
        return 0
    return len(sync_target(target=target, reason=reason))


def live_targets() -> list[ScimTarget]:
    return list(
        ScimTarget.objects.filter(enabled=True, client__is_active=True).select_related("client")
    )


@transaction.atomic
def queue_user_changes(*, user_ids: Iterable[int], reason: str) -> int:
    """These people may have changed (joined or left a group, profile, deactivated, …): queue a
    delivery for each of them at each app they may use or were provisioned to. The deliveries
    decide what to send when they run. Returns how many were queued."""
    ids = frozenset(user_ids)
    if not ids:
        return 0
    queued = 0
    people = {user.pk: user for user in get_user_model().objects.filter(pk__in=ids)}
    for target in live_targets():
        for pk in candidate_ids(target=target, user_ids=ids):
            if pk in people and queue_delivery(target=target, user=people[pk], reason=reason):
                queued += 1
    return queued


def queue_app_syncs(*, client_ids: Iterable[int] | None, reason: str) -> int:
    """Who may use these apps (every app: None) changed: reconcile each live target."""
    wanted = None if client_ids is None else frozenset(client_ids)
    targets = [t for t in live_targets() if wanted is None or t.client_id in wanted]
    for target in targets:
        sync_target_task.enqueue(target.pk, reason[:64])
    return len(targets)
