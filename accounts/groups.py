"""Group membership as the apps see it: a member of a group is a member of every ancestor.

Queries only; groups and memberships change through the group services in `accounts.services`
(audited), never by writing `user.groups` directly. What one question costs does not depend on
a group's size: the nesting table (one row per nested group, small) is read whole, and
memberships are read through the membership table's user or group index.

- `effective_group_ids(user_id=...)`: the user's groups and their ancestors, two queries.
- `effective_member_ids(group=...)`: the members of a group and of its subgroups, two queries.

Only active accounts count as members here: a deactivated account keeps its rows (activating
it again restores them) but is in no group while it is inactive.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group

from accounts.models import GroupProfile, User

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


def effective_group_ids(*, user_id: int) -> frozenset[int]:
    """The ids of the groups the user is in: their own groups and all their ancestors.

    Two queries whatever the groups' sizes: the user's memberships (the membership table's
    user index, joined to the user row for `is_active`), then the nesting table, only when the
    user is in some group. An inactive or unknown user is in no group.
    """
    direct = list(
        Membership.objects.filter(user_id=user_id, user__is_active=True).values_list(
            "group_id", flat=True
        )
    )
    if not direct:
        return frozenset()
    return with_ancestors(direct, parents=parent_map())


def effective_member_ids(*, group: Group) -> frozenset[int]:
    """The ids of the active users who are members of `group`: its own members and the
    members of its subgroups at every depth. Two queries (nesting table, memberships)."""
    group_ids = {group.pk, *descendant_ids(group.pk, parents=parent_map())}
    return frozenset(
        Membership.objects.filter(group_id__in=group_ids, user__is_active=True)
        .values_list("user_id", flat=True)
        .distinct()
    )
