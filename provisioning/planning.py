"""What an app's SCIM server should hold, against what it was sent: the plan (and the dry run).

Who is provisioned is who may use the app (the access rules, `oauth_clients.access`): an active
account the app is open to or assigned to, directly or through a group. A person who may use it
and was never sent is created; one whose resource changed (name, e-mail, department, roles, …)
or was deactivated there is replaced; one who may no longer use it is deactivated (or deleted,
as the target says).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from oauth_clients import access
from provisioning.models import ProvisionedUser, ProvisioningDelivery, ScimTarget
from provisioning.resources import resource_hash, user_resource

Action = ProvisioningDelivery.Action


@dataclass(frozen=True)
class Change:
    """One person to bring up to date at one app."""

    user: Any
    action: str
    provisioned: ProvisionedUser | None = None
    resource: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def resource_hash(self) -> str:
        return resource_hash(self.resource) if self.resource is not None else ""


def target_is_live(target: ScimTarget) -> bool:
    """A disabled target, or a disabled app, is paused: nothing is sent, nothing is lost."""
    return bool(target.enabled and target.client.is_active)


def plan_user(
    *,
    target: ScimTarget,
    user: Any,
    provisioned: ProvisionedUser | None,
    may_use: bool | None = None,
) -> Change | None:
    """What `user` needs at the app now, or None when the app is up to date. `may_use`, when
    already known, spares asking the rules (`access.may_use`) for this one person."""
    if may_use is None:
        may_use = access.may_use(user=user, client=target.client)
    if may_use:
        resource = user_resource(target=target, user=user)
        if provisioned is None:
            return Change(user=user, action=Action.CREATE, resource=resource)
        if not provisioned.active or provisioned.sent_hash != resource_hash(resource):
            return Change(
                user=user, action=Action.UPDATE, provisioned=provisioned, resource=resource
            )
        return None
    if provisioned is None:
        return None
    if target.deprovision == ScimTarget.Deprovision.DELETE:
        return Change(user=user, action=Action.DELETE, provisioned=provisioned)
    if provisioned.active:
        return Change(user=user, action=Action.DEACTIVATE, provisioned=provisioned)
    return None


def candidate_ids(*, target: ScimTarget, user_ids: frozenset[int] | None = None) -> list[int]:
    """The people whose state at the app may have to change: those who may use the app and
    those provisioned there (of `user_ids` when given). Sorted."""
    allowed = access.users_with_access(client=target.client)
    people = get_user_model().objects.filter(is_active=True)
    if allowed is not None:
        people = people.filter(pk__in=allowed)
    if user_ids is not None:
        people = people.filter(pk__in=user_ids)
    ids = set(people.values_list("pk", flat=True))
    provisioned = ProvisionedUser.objects.filter(target=target)
    if user_ids is not None:
        provisioned = provisioned.filter(user_id__in=user_ids)
    ids.update(provisioned.values_list("user_id", flat=True))
    return sorted(ids)


def plan_target(*, target: ScimTarget, user_ids: frozenset[int] | None = None) -> list[Change]:
    """Every change the app needs (the dry run shows it; the sync queues it)."""
    if not target_is_live(target):
        return []
    # Who may use the app, read once for everyone (as signout does for many token holders).
    allowed = access.users_with_access(client=target.client)
    ids = candidate_ids(target=target, user_ids=user_ids)
    provisioned = {row.user_id: row for row in ProvisionedUser.objects.filter(target=target)}
    changes = []
    for user in get_user_model().objects.filter(pk__in=ids).order_by("username", "pk"):
        may_use = user.is_active and (allowed is None or user.pk in allowed)
        change = plan_user(
            target=target, user=user, provisioned=provisioned.get(user.pk), may_use=may_use
        )
        if change is not None:
            changes.append(change)
    return changes
