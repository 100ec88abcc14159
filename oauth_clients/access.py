"""Who may use which app, with which roles and claims: pure queries over the access registry.

The rules an app's access policy, assignments, roles and claim mapping (oauth_clients.models)
stand for, in one place: the sign-in and token checks, the claims, the employee's app launcher
and the admin's claims preview all ask here. Nothing here writes; the changes are
`oauth_clients.services` (set_access_policy, assign, unassign, define_role, grant_role…).

Two forms of the same rules:
- expressions for the query that already reads a token or a code with its user and app
  (`may_use_expression`, `roles_expression`; the engine's prepared lookups carry their answers
  on the user as `AppAccess`), so a token use or a grant of an assigned app costs no query of
  its own, as for an app open to everyone;
- functions for a user and an app loaded any other way (`may_use`, `roles_for`), which use the
  carried answer when it is there and ask the database otherwise.

Query budget (pinned in tests/clients/test_access_queries.py): `may_use` costs nothing for an
app open to everyone (the policy is on the client row) and one indexed query for an assigned
app (assignments ⋈ the user's memberships ⋈ the group closure, accounts.groups), whatever the
size of the groups or the depth of the nesting; `roles_for` likewise; `apps_for` one whatever
the number of apps; nothing when the answer was carried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.utils import timezone

from accounts.groups import effective_member_ids, groups_of, in_groups_of
from idp.db.prepared import row_exists
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
    memberships (the membership table's user index, joined to the user row for `is_active`)
    and the closure's ancestors of them (`accounts.groups.in_groups_of`), with the names.

    Iterating gives the ids, so an instance can be passed as `group_ids=` to `may_use` and
    `roles_for`; nothing is read until then (an open app's check never reads it, nor an
    access check whose answer came with the token). An inactive or unknown user is in no group.
    """

    __slots__ = ("_names", "user_id")

    def __init__(self, *, user_id: int) -> None:
        self.user_id = user_id
        self._names: dict[int, str] | None = None

    @property
    def loaded(self) -> bool:
        return self._names is not None

    def _load(self) -> dict[int, str]:
        if self._names is None:
            self._names = dict(
                Group.objects.filter(
                    in_groups_of(self.user_id, field="pk", active_only=True)
                ).values_list("pk", "name")
            )
        return self._names

    @property
    def ids(self) -> frozenset[int]:
        return frozenset(self._load())

    @property
    def names(self) -> list[str]:
        return sorted(self._load().values())

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids)


def _loaded_ids(group_ids: Iterable[int] | None) -> frozenset[int] | None:
    """The caller's group ids when they are already read, else None (not read here)."""
    if group_ids is None or (isinstance(group_ids, EffectiveGroups) and not group_ids.loaded):
        return None
    return frozenset(group_ids)


def _granted_to(user: Any, group_ids: Iterable[int] | None = None) -> Q:
    """A row (assignment or role grant) naming the user or a group the user is in, a group
    above one of theirs included (accounts.groups: a member of a group is a member of its
    ancestors).

    With the caller's `group_ids` already read (the user's effective groups), one flat,
    indexed `IN`; otherwise the groups are found inside the row query itself
    (`accounts.groups.in_groups_of`: memberships ⋈ closure, flat subqueries whatever the
    depth, so one query in all). The caller checks `user.is_active` (an inactive account is
    in no group).
    """
    ids = _loaded_ids(group_ids)
    if ids is None:
        return Q(user_id=user.pk) | in_groups_of(user.pk)
    if not ids:
        return Q(user_id=user.pk)
    return Q(user_id=user.pk) | Q(group_id__in=ids)


def _any_granted(rows: QuerySet, user: Any) -> Q:
    """For the query above `rows` (assignments or role grants of one app or role, correlated
    to it): some row names `user` or a group they are in or above one of theirs.

    `user` is an id or an `OuterRef`, as seen from `rows`. Three scalar subqueries tested for
    NULL (`idp.db.prepared.row_exists`), each one index probe from the person's side: a row
    naming a group of theirs or above one (through the closure, whose rows include each
    group itself: the usual way in, first, so a member costs one probe), the row naming them,
    a row naming one of their own groups that has no closure rows. Never a scan of the app's
    rows, however many people it is assigned to one by one."""
    own, above = groups_of(user)
    return (
        Q(row_exists(rows.filter(group_id__in=above)))
        | Q(row_exists(rows.filter(user_id=user)))
        | Q(row_exists(rows.filter(group_id__in=own)))
    )


# --- The rules as expressions of the query that reads a token or a code with its user and app


class SpaceSeparated(Aggregate):
    """The values of a group of rows joined by one space: SQLite's GROUP_CONCAT, PostgreSQL's
    STRING_AGG (Django 5.2 has no portable string aggregate). For names that cannot contain a
    space (`oauth_clients.models.validate_role_name`); their order is the database's."""

    function = "STRING_AGG"
    output_field = TextField()

    def __init__(self, expression: Any, **extra: Any) -> None:
        super().__init__(expression, Value(" "), **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, function="GROUP_CONCAT", **extra_context)

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, function="STRING_AGG", **extra_context)


def may_use_expression(user_field: str = "user", client_field: str = "application") -> Case:
    """True when the row's user may use the row's app as far as assignments go (`may_use`
    without the `is_active` checks, which read columns the row already has): the app is open
    to everyone (then nothing else is evaluated), or the user is assigned to it directly or
    through a group they are in or a group above one of them (`_any_granted`)."""
    assignments = Assignment.objects.filter(client_id=OuterRef(f"{client_field}_id"))
    return Case(
        When(Q(**{f"{client_field}__access_policy": Client.AccessPolicy.OPEN}), then=True),
        When(_any_granted(assignments, OuterRef(f"{user_field}_id")), then=True),
        default=False,
        output_field=BooleanField(),
    )


def roles_expression(user_field: str = "user", client_field: str = "application") -> Subquery:
    """The names of the row's app's roles granted to the row's user (directly or to a group
    they are in or above one of theirs), as one space-separated value, NULL when none:
    `parse_roles` makes the claim of it. One correlated subquery over the app's roles (a
    few), each probed as `_any_granted` does."""
    grants = RoleGrant.objects.filter(role_id=OuterRef("pk"))
    names = (
        AppRole.objects.filter(client_id=OuterRef(f"{client_field}_id"))
        .filter(_any_granted(grants, OuterRef(OuterRef(f"{user_field}_id"))))
        .order_by()
        .values("client_id")
        .annotate(names=SpaceSeparated("name"))
        .values("names")
    )
    return Subquery(names, output_field=TextField())


def parse_roles(value: str | None) -> tuple[str, ...]:
    """`roles_expression`'s value as the claim has it: sorted, unique."""
    return tuple(sorted(set((value or "").split())))


# Set on a user loaded with a token or a code by a query that also answered the questions
# above for that token's app (oauth_clients/oidc/app_access.py `annotate_app_access`).
APP_ACCESS_ATTR = "idp_app_access"


@dataclass(frozen=True, slots=True)
class AppAccess:
    """What the query that read a user with one app's token or code said about the two:
    whether the user may use the app as far as assignments go, and (None: not asked) the app's
    roles granted to them. Lives as long as that loaded user (one request)."""

    client_id: int
    may_use: bool
    roles: tuple[str, ...] | None = None


def _carried(user: Any, client: Client) -> AppAccess | None:
    known = getattr(user, APP_ACCESS_ATTR, None)
    if isinstance(known, AppAccess) and known.client_id == client.pk:
        return known
    return None


# --- The rules as functions of a loaded user and app


def may_use(*, user: Any, client: Client, group_ids: Iterable[int] | None = None) -> bool:
    """Whether `user` may sign in to `client` and hold its tokens.

    An active account may use an active app that is open to everyone; an app whose policy is
    `assigned` only by the accounts assigned to it directly or through one of their groups (or a
    group above one of them). The answer carried with a token's user (`AppAccess`) costs no
    query; `group_ids` (the user's effective group ids) is used when already read. An unknown
    policy value counts as `assigned`.
    """
    if not user.is_active or not client.is_active:
        return False
    if client.access_policy == Client.AccessPolicy.OPEN:
        return True
    known = _carried(user, client)
    if known is not None:
        return known.may_use
    ids = _loaded_ids(group_ids)
    if ids is not None:
        return Assignment.objects.filter(_granted_to(user, ids), client_id=client.pk).exists()
    assignments = Assignment.objects.filter(client_id=OuterRef("pk"))
    return Client.objects.filter(_any_granted(assignments, user.pk), pk=client.pk).exists()


def roles_for(*, user: Any, client: Client, group_ids: Iterable[int] | None = None) -> list[str]:
    """The app's roles granted to `user`, directly or through their groups: sorted, unique."""
    if not user.is_active:
        return []
    known = _carried(user, client)
    if known is not None and known.roles is not None:
        return list(known.roles)
    ids = _loaded_ids(group_ids)
    grants = RoleGrant.objects.filter(role_id=OuterRef("pk"))
    granted = (
        Q(Exists(grants.filter(_granted_to(user, ids))))
        if ids is not None
        else _any_granted(grants, user.pk)
    )
    names = AppRole.objects.filter(granted, client_id=client.pk).values_list("name", flat=True)
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
        .exclude(kind__in=(Client.Kind.SERVICE, Client.Kind.API))
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
