"""Who may use which app, with which roles and claims: pure queries over the access registry.

The rules an app's access policy, assignments, roles and claim mapping (oauth_clients.models)
stand for, in one place: the sign-in and token checks, the claims, the employee's app launcher
and the admin's claims preview all ask here. Nothing here writes; the changes are
`oauth_clients.services` (set_access_policy, assign, unassign, define_role, grant_role…).

Query budget (pinned in tests/clients/test_access_queries.py): `may_use` costs nothing for an
app open to everyone (the policy is on the client row) and two queries for an assigned app (the
user's groups with the small nesting table, `EffectiveGroups`; one indexed EXISTS over the app's
assignments), whatever the size of the groups or the depth of the nesting; one when the caller
passes the user's groups (`group_ids=`, read once per request). `roles_for` likewise; `apps_for`
costs two whatever the number of apps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, IntegerField, OuterRef, Q, Value
from django.utils import timezone

from accounts.groups import (
    Membership,
    effective_member_ids,
    with_ancestors,
)
from accounts.models import GroupProfile
from oauth_clients.models import (
    MAPPABLE_USER_ATTRIBUTES,
    AccessToken,
    AppRole,
    Assignment,
    Client,
    RefreshToken,
    RoleGrant,
)


class EffectiveGroups:
    """A user's groups as the apps see them: their own groups and every group above them
    (accounts.groups), with their names; read on first use, then kept for the request.

    One query, whatever the depth of the nesting or the size of the groups: the user's
    memberships (the membership table's user index, joined to the user row for `is_active`
    and to the group for its name) and the whole nesting table (small, one row per nested
    group, with its parent's name) in one UNION ALL. The walk up the tree is
    `accounts.groups.with_ancestors`, in Python, so the SQL does not grow with the depth.

    Iterating gives the ids, so an instance can be passed as `group_ids=` to `may_use` and
    `roles_for`; nothing is read until then (an open app's check never reads it). An inactive
    or unknown user is in no group.
    """

    __slots__ = ("_names", "user_id")

    def __init__(self, *, user_id: int) -> None:
        self.user_id = user_id
        self._names: dict[int, str] | None = None

    def _load(self) -> dict[int, str]:
        if self._names is None:
            direct = Membership.objects.filter(
                user_id=self.user_id, user__is_active=True
            ).values_list("group_id", "group__name", Value(None, output_field=IntegerField()))
            nesting = GroupProfile.objects.filter(parent__isnull=False).values_list(
                "parent_id", "parent__name", "group_id"
            )
            own: dict[int, str] = {}
            parents: dict[int, int] = {}
            names: dict[int, str] = {}
            for group_id, name, child_id in direct.union(nesting, all=True):
                if child_id is None:
                    own[group_id] = name
                else:
                    parents[child_id] = group_id
                    names[group_id] = name
            names.update(own)
            self._names = {
                group_id: names[group_id]
                for group_id in with_ancestors(own, parents=parents)
                if group_id in names
            }
        return self._names

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self._load())

    @property
    def names(self) -> list[str]:
        return sorted(self._load().values())

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)


def _granted_to(user: Any, group_ids: Iterable[int] | None = None) -> Q:
    """A row (assignment or role grant) naming the user or a group the user is in, a group
    above one of theirs included (accounts.groups: a member of a group is a member of its
    ancestors).

    The groups are the caller's `group_ids` (the user's effective groups), else read here
    (`EffectiveGroups`, one query): then the row query is one flat, indexed `IN` whatever the
    depth of the nesting. (It once found the groups inside the row query itself, one nested
    subquery per level of the deepest chain: SQLite's parser overflowed at eight levels.)
    The caller checks `user.is_active` (an inactive account is in no group).
    """
    if group_ids is None:
        group_ids = EffectiveGroups(user_id=user.pk)
    ids = frozenset(group_ids)
    if not ids:
        return Q(user_id=user.pk)
    return Q(user_id=user.pk) | Q(group_id__in=ids)


def may_use(*, user: Any, client: Client, group_ids: Iterable[int] | None = None) -> bool:
    """Whether `user` may sign in to `client` and hold its tokens.

    An active account may use an active app that is open to everyone; an app whose policy is
    `assigned` only by the accounts assigned to it directly or through one of their groups (or a
    group above one of them). `group_ids` (the user's effective group ids) saves a query when the
    caller already has them for `roles_for`. An unknown policy value counts as `assigned`.
    """
    if not user.is_active or not client.is_active:
        return False
    if client.access_policy == Client.AccessPolicy.OPEN:
        return True
    granted = _granted_to(user, group_ids)
    return Assignment.objects.filter(granted, client_id=client.pk).exists()


def roles_for(*, user: Any, client: Client, group_ids: Iterable[int] | None = None) -> list[str]:
    """The app's roles granted to `user`, directly or through their groups: sorted, unique."""
    if not user.is_active:
        return []
    granted = RoleGrant.objects.filter(_granted_to(user, group_ids), role_id=OuterRef("pk"))
    names = AppRole.objects.filter(Exists(granted), client_id=client.pk).values_list(
        "name", flat=True
    )
    return sorted(set(names))


def groups_claim_for(*, user: Any, client: Client, group_names: Iterable[str]) -> list[str]:
    """The user's group names (`group_names`, as the claims function found them) this app may
    see, sorted: all of them, those starting with the app's prefix, or those on its list.

    A prefix filter with an empty prefix lets nothing through (the services refuse one).
    """
    names = set(group_names)
    mode = client.groups_filter
    if mode == Client.GroupsFilter.NONE:
        return sorted(names)
    if mode == Client.GroupsFilter.PREFIX:
        prefix = client.groups_prefix
        return sorted(name for name in names if prefix and name.startswith(prefix))
    if mode == Client.GroupsFilter.LIST:
        listed = set(client.claim_groups.values_list("name", flat=True)) if names else set()
        return sorted(names & listed)
    return []


def mapped_claims(*, user: Any, client: Client) -> dict[str, Any]:
    """The app's own claim names with the user attributes mapped to them (no query).

    OIDC Core §5.3.2: a claim without a value is omitted, not sent empty.
    """
    claims: dict[str, Any] = {}
    for claim, attribute in sorted((client.claim_attributes or {}).items()):
        if attribute not in MAPPABLE_USER_ATTRIBUTES:
            continue
        value = getattr(user, attribute, None)
        if isinstance(value, str):
            value = value.strip()
        if value not in ("", None):
            claims[claim] = value
    return claims


# Set on an app loaded by a query that also answered "does it define roles"
# (oauth_clients/oidc/claims.py `annotate_app_has_roles`).
APP_HAS_ROLES_ATTR = "idp_app_has_roles"


def defines_roles(client: Client) -> bool:
    known = getattr(client, APP_HAS_ROLES_ATTR, None)
    if known is None:  # an app not loaded with the annotation
        return AppRole.objects.filter(client_id=client.pk).exists()
    return bool(known)


def app_claims(
    *, user: Any, client: Client, groups: EffectiveGroups, granted: set[str]
) -> dict[str, Any]:
    """What this app was granted beyond the standard claims, for the one claims function
    (oauth_clients/oidc/claims.py `build_claims`) and the admin's preview alike: its mapped
    claims, then its roles (an app that defines roles always gets the claim, empty when the
    person has none), and the `groups` claim with the scope, filtered for the app."""
    claims: dict[str, Any] = mapped_claims(user=user, client=client)
    if defines_roles(client):
        claims[client.roles_claim] = roles_for(user=user, client=client, group_ids=groups)
    if "groups" in granted:
        claims["groups"] = groups_claim_for(user=user, client=client, group_names=groups.names)
    return claims


def claims_preview(*, user: Any, client: Client) -> dict[str, Any]:
    """What the app would get for `user` beyond the standard claims of its scopes (the admin's
    preview), with every scope it may ask for granted: whether the user may sign in at all and
    the app's own claims, computed by the same `app_claims` as its tokens and userinfo."""
    groups = EffectiveGroups(user_id=user.pk)
    return {
        "may_use": may_use(user=user, client=client, group_ids=groups),
        "claims": app_claims(
            user=user, client=client, groups=groups, granted=set(client.allowed_scopes.split())
        ),
    }


def apps_for(*, user: Any) -> list[Client]:
    """The apps `user` may open, by name: the employee's app launcher.

    Active apps that sign people in (not machine-to-machine services), open to everyone or
    assigned to the user or one of their groups. Two queries however many apps there are.
    """
    if not user.is_active:
        return []
    assigned = Assignment.objects.filter(_granted_to(user), client_id=OuterRef("pk"))
    return list(
        Client.objects.filter(is_active=True)
        .exclude(kind=Client.Kind.SERVICE)
        .filter(Q(access_policy=Client.AccessPolicy.OPEN) | Q(Exists(assigned)))
        .order_by("name", "pk")
    )


def users_with_access(*, client: Client) -> frozenset[int] | None:
    """The ids of the accounts assigned to an `assigned` app (directly or through a group and
    its subgroups; active or not), or None for an app open to every active account."""
    if client.access_policy == Client.AccessPolicy.OPEN:
        return None
    rows = Assignment.objects.filter(client_id=client.pk).select_related("group")
    ids: set[int] = set()
    for row in rows:
        if row.user_id is not None:
            ids.add(row.user_id)
        elif row.group is not None:
            ids.update(effective_member_ids(group=row.group))
    return frozenset(ids)


def token_holders_without_access(*, client: Client) -> list[int]:
    """The ids of the users who hold a live token of `client` but may no longer use it.

    What ending access needs after a change that narrows who may use an app (an unassignment,
    a switch to `assigned`, a member leaving a group, a group deleted): their tokens for the
    app are revoked and the app is told through back-channel logout. Sorted.
    """
    now = timezone.now()
    holders = set(
        RefreshToken.objects.filter(application_id=client.pk, revoked__isnull=True).values_list(
            "user_id", flat=True
        )
    )
    holders.update(
        AccessToken.objects.filter(
            application_id=client.pk, expires__gt=now, user__isnull=False
        ).values_list("user_id", flat=True)
    )
    if not holders:
        return []
    allowed = users_with_access(client=client)
    candidates = holders if allowed is None else holders & allowed
    active = (
        set(
            get_user_model()
            .objects.filter(pk__in=candidates, is_active=True)
            .values_list("pk", flat=True)
        )
        if candidates
        else set()
    )
    if not client.is_active:
        active = set()
    return sorted(holders - active)
