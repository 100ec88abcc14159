"""Group membership as the apps see it: a member of a group is a member of every ancestor.

Queries only; groups and memberships change through the group services in `accounts.services`
(audited), never by writing `user.groups` directly. What one question costs depends neither on
a group's size nor on the depth of the nesting: memberships are read through the membership
table's user or group index and joined to the closure table (`GroupClosure`: every group with
each group above it), which the group services keep.

- `groups_of(user)`, `in_groups_of(user)`: the user's groups and those above them as
  subqueries of another query (oauth_clients/access.py puts them in the token lookups).
- `effective_group_ids(user_id=...)`: the user's groups and their ancestors, one query.
- `effective_member_ids(group=...)`: the members of a group and of its subgroups, one query.
- `parent_map` and the walks below it: the nesting as `GroupProfile` holds it (the source the
  closure is built from; the services' loop check).

A group's own members count for it even without its closure rows (a group made outside the
services: a seed, a test): the readers take a membership's group itself, then what the closure
puts above it. Only active accounts count as members here: a deactivated account keeps its
rows (activating it again restores them) but is in no group while it is inactive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import OuterRef, Q, QuerySet

from accounts.models import GroupClosure, GroupProfile, User

# Django's table of direct memberships (user_id, group_id), unique together and indexed on
# each column.
Membership = User.groups.through


def parent_map() -> dict[int, int]:
    """Each nested group's parent: the whole nesting table in one query."""
    return dict(
        GroupProfile.objects.filter(parent__isnull=False).values_list("group_id", "parent_id")
    )


def ancestor_ids(group_id: int, *, parents: dict[int, int]) -> list[int]:
    """The group's parent, its parent's parent and so on, nearest first (not the group)."""
    found: list[int] = []
    current = parents.get(group_id)
    # The services refuse a loop; should one exist anyway, the walk ends where it closes.
    while current is not None and current != group_id and current not in found:
        found.append(current)
        current = parents.get(current)
    return found


def descendant_ids(group_id: int, *, parents: dict[int, int]) -> set[int]:
    """The group's subgroups at every depth (not the group)."""
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    pending = [group_id]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child != group_id and child not in found:
                found.add(child)
                pending.append(child)
    return found


def with_ancestors(group_ids: Iterable[int], *, parents: dict[int, int]) -> frozenset[int]:
    """These groups and all their ancestors."""
    found: set[int] = set()
    for group_id in group_ids:
        if group_id not in found:
            found.add(group_id)
            found.update(ancestor_ids(group_id, parents=parents))
    return frozenset(found)


def would_nest_in_itself(*, group_id: int, parent_id: int, parents: dict[int, int]) -> bool:
    """Whether putting the group inside `parent_id` would make it its own ancestor."""
    return parent_id == group_id or group_id in ancestor_ids(parent_id, parents=parents)


def _deeper(user: Any) -> Any:
    """`user` (an id, or an `OuterRef` to the user's column) as seen from one subquery further
    down: an outer reference gains a level, a value stays."""
    return OuterRef(user) if isinstance(user, OuterRef) else user


def _memberships(user: Any, *, active_only: bool) -> QuerySet:
    """The ids of the groups `user` is a direct member of (the membership table's user index)."""
    rows = Membership.objects.filter(user_id=user)
    if active_only:
        rows = rows.filter(user__is_active=True)
    return rows.values("group_id")


def groups_of(user: Any, *, active_only: bool = False) -> tuple[QuerySet, QuerySet]:
    """The groups `user` is in, as two subqueries of group ids for a `__in` filter of another
    query: their own groups (the membership table's user index), and every group above one of
    them (those memberships ⋈ the closure). Flat whatever the depth of the nesting; the first
    also counts a group without closure rows (made outside the services) as itself.

    `user` is an id, or an `OuterRef` to the user's column as seen from the query these
    filter (an assignment or a role grant looked up inside a token's query).
    `active_only`: a deactivated account is in no group (callers that check `is_active`
    themselves leave it off)."""
    own = _memberships(_deeper(user), active_only=active_only)
    above = GroupClosure.objects.filter(
        descendant_id__in=_memberships(_deeper(_deeper(user)), active_only=active_only)
    ).values("ancestor_id")
    return own, above


def in_groups_of(user: Any, *, field: str = "group_id", active_only: bool = False) -> Q:
    """Rows whose `field` is a group `user` is in: one of their own or one above (`groups_of`)."""
    own, above = groups_of(user, active_only=active_only)
    return Q(**{f"{field}__in": own}) | Q(**{f"{field}__in": above})


def effective_group_ids(*, user_id: int) -> frozenset[int]:
    """The ids of the groups the user is in: their own groups and all their ancestors.

    One query whatever the groups' sizes or the depth (the user's memberships ⋈ the closure
    table). An inactive or unknown user is in no group.
    """
    return frozenset(
        Group.objects.filter(in_groups_of(user_id, field="pk", active_only=True)).values_list(
            "pk", flat=True
        )
    )


def effective_member_ids(*, group: Group) -> frozenset[int]:
    """The ids of the active users who are members of `group`: its own members and the
    members of its subgroups at every depth. One query (the closure's descendants of the
    group ⋈ the membership table's group index)."""
    below = GroupClosure.objects.filter(ancestor_id=group.pk).values("descendant_id")
    return frozenset(
        Membership.objects.filter(Q(group_id=group.pk) | Q(group_id__in=below))
        .filter(user__is_active=True)
        .values_list("user_id", flat=True)
        .distinct()
    )
