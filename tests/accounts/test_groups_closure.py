"""The group closure table (accounts.models.GroupClosure): kept by the group services, filled
by its migration, and what the readers make of a group without rows."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts import services
from accounts.groups import effective_group_ids, effective_member_ids
from accounts.models import GroupClosure, GroupProfile

pytestmark = pytest.mark.django_db


def closure() -> set[tuple[str, str, int]]:
    return set(GroupClosure.objects.values_list("ancestor__name", "descendant__name", "depth"))


def expected(parents: dict[str, str | None]) -> set[tuple[str, str, int]]:
    """Every (ancestor-or-self, descendant, depth) of a {group: parent} tree."""
    rows = set()
    for name in parents:
        current: str | None = name
        depth = 0
        while current is not None:
            rows.add((current, name, depth))
            current, depth = parents[current], depth + 1
    return rows


@pytest.fixture
def tree(admin_user):
    """staff > engineering > backend > databases, and sales beside engineering."""
    staff = services.create_group(name="staff", actor=admin_user)
    engineering = services.create_group(name="engineering", parent=staff, actor=admin_user)
    backend = services.create_group(name="backend", parent=engineering, actor=admin_user)
    databases = services.create_group(name="databases", parent=backend, actor=admin_user)
    sales = services.create_group(name="sales", parent=staff, actor=admin_user)
    return staff, engineering, backend, databases, sales


TREE = {
    "staff": None,
    "engineering": "staff",
    "backend": "engineering",
    "databases": "backend",
    "sales": "staff",
}


def test_creating_groups_writes_a_row_per_ancestor_and_one_for_itself(tree):
    assert closure() == expected(TREE)


def test_moving_a_group_moves_its_whole_subtree(tree, admin_user):
    _staff, _engineering, backend, _databases, sales = tree

    services.set_group_parent(group=backend, parent=sales, actor=admin_user)

    assert closure() == expected({**TREE, "backend": "sales"})


def test_a_group_moved_to_the_top_keeps_only_its_own_subtree(tree, admin_user):
    _staff, engineering, *_ = tree

    services.set_group_parent(group=engineering, parent=None, actor=admin_user)

    assert closure() == expected({**TREE, "engineering": None})


def test_deleting_a_group_takes_its_rows(tree, admin_user):
    *_, databases, sales = tree

    services.delete_group(group=databases, actor=admin_user)
    services.delete_group(group=sales, actor=admin_user)

    assert closure() == expected({"staff": None, "engineering": "staff", "backend": "engineering"})


def test_a_member_deep_down_is_in_every_group_above(tree, admin_user, user):
    staff, engineering, backend, databases, sales = tree
    services.add_members(group=databases, users=[user], actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == {
        staff.pk,
        engineering.pk,
        backend.pk,
        databases.pk,
    }
    assert user.pk in effective_member_ids(group=staff)
    assert user.pk not in effective_member_ids(group=sales)


def test_a_group_made_outside_the_services_counts_as_itself(user):
    plain = Group.objects.create(name="legacy")  # no closure rows at all
    user.groups.add(plain)

    assert not GroupClosure.objects.exists()
    assert effective_group_ids(user_id=user.pk) == {plain.pk}
    assert effective_member_ids(group=plain) == {user.pk}


def test_nesting_written_directly_counts_once_the_closure_is_rebuilt(tree, user):
    staff, *_ = tree
    outside = Group.objects.create(name="contractors")
    GroupProfile.objects.create(group=outside, parent=staff)
    user.groups.add(outside)
    assert effective_group_ids(user_id=user.pk) == {outside.pk}

    services.rebuild_group_closure(groups=[outside])

    assert effective_group_ids(user_id=user.pk) == {outside.pk, staff.pk}
    assert closure() == expected({**TREE, "contractors": "staff"})


def test_a_forty_level_chain_is_one_query(admin_user, user, django_assert_num_queries):
    parent = None
    for level in range(40):
        parent = services.create_group(name=f"level{level:02d}", parent=parent, actor=admin_user)
    assert parent is not None
    user.groups.add(parent)

    with django_assert_num_queries(1):
        assert len(effective_group_ids(user_id=user.pk)) == 40
    assert GroupClosure.objects.count() == 40 * 41 // 2


def test_an_inactive_member_is_in_no_group(tree, admin_user):
    _staff, _engineering, backend, *_ = tree
    inactive = get_user_model().objects.create_user("gone", is_active=False)
    backend.user_set.add(inactive)

    assert effective_group_ids(user_id=inactive.pk) == frozenset()
    assert inactive.pk not in effective_member_ids(group=backend)


def test_the_migration_fills_the_closure_from_the_existing_nesting(tree):
    GroupClosure.objects.all().delete()
    loose = Group.objects.create(name="loose")  # a group without a profile

    migration = importlib.import_module("accounts.migrations.0013_groupclosure")
    migration.fill_closure(django_apps, None)

    assert closure() == expected({**TREE, "loose": None})
    assert GroupClosure.objects.filter(ancestor=loose, descendant=loose, depth=0).exists()
