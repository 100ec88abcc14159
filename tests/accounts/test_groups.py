"""Groups: nesting, effective membership (accounts/groups.py) and the audited group services."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import RestrictedError

from accounts import services
from accounts.groups import Membership, effective_group_ids, effective_member_ids
from accounts.models import AuditEvent, GroupProfile

pytestmark = pytest.mark.django_db

User = get_user_model()
GROUP_PERMISSIONS = ["add_group", "change_group", "delete_group"]


def make_user(username: str, **fields) -> User:
    return User.objects.create_user(username, f"{username}@example.com", None, **fields)


@pytest.fixture
def tree(admin_user):
    """staff > engineering > backend, and sales beside engineering."""
    staff = services.create_group(name="staff", actor=admin_user)
    engineering = services.create_group(name="engineering", parent=staff, actor=admin_user)
    backend = services.create_group(name="backend", parent=engineering, actor=admin_user)
    sales = services.create_group(name="sales", parent=staff, actor=admin_user)
    return staff, engineering, backend, sales


@pytest.fixture
def group_admin(db):
    """A staff member with the group permissions (and the user ones), not a superuser."""
    admin = make_user("groupadmin", is_staff=True)
    admin.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__in=GROUP_PERMISSIONS)
    )
    return User.objects.get(pk=admin.pk)  # a fresh permission cache


def events(type_: str, **extra) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(type=type_).order_by("id")
    return [row for row in rows if all(row.extra.get(k) == v for k, v in extra.items())]


# --- Nesting and effective membership -----------------------------------------------------------


def test_a_member_of_a_subgroup_is_a_member_of_every_group_above_it(tree, admin_user, user):
    staff, engineering, backend, sales = tree

    services.add_members(group=backend, users=[user], actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == {backend.pk, engineering.pk, staff.pk}
    assert user.pk in effective_member_ids(group=staff)
    assert user.pk in effective_member_ids(group=engineering)
    assert user.pk not in effective_member_ids(group=sales)


def test_a_member_of_the_top_group_is_not_a_member_of_its_subgroups(tree, admin_user, user):
    staff, _engineering, backend, _sales = tree

    services.add_members(group=staff, users=[user], actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == {staff.pk}
    assert user.pk not in effective_member_ids(group=backend)


def test_a_user_in_no_group_is_in_no_group(tree, user):
    assert effective_group_ids(user_id=user.pk) == frozenset()


def test_groups_made_outside_the_services_count_as_top_level(admin_user, user):
    plain = Group.objects.create(name="legacy")
    user.groups.add(plain)

    assert effective_group_ids(user_id=user.pk) == {plain.pk}
    assert effective_member_ids(group=plain) == {user.pk}
    assert not GroupProfile.objects.filter(group=plain).exists()


def test_a_deactivated_member_is_in_no_group_until_activated_again(tree, admin_user, user):
    _staff, engineering, backend, _sales = tree
    services.add_members(group=backend, users=[user], actor=admin_user)
    assert engineering.pk in effective_group_ids(user_id=user.pk)

    services.deactivate_user(user=user, actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == frozenset()
    assert user.pk not in effective_member_ids(group=engineering)
    # The membership itself stays: activating the account restores it.
    assert Membership.objects.filter(user_id=user.pk, group_id=backend.pk).exists()
    services.activate_user(user=user, actor=admin_user)
    assert engineering.pk in effective_group_ids(user_id=user.pk)


def test_moving_a_subgroup_moves_its_members_effective_groups(tree, admin_user, user):
    staff, _engineering, backend, sales = tree
    services.add_members(group=backend, users=[user], actor=admin_user)

    assert services.set_group_parent(group=backend, parent=sales, actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == {backend.pk, sales.pk, staff.pk}
    [moved] = events(AuditEvent.Type.GROUP_PARENT_CHANGED, group="backend")
    assert moved.actor == admin_user
    assert moved.extra["parent"] == "sales"
    assert moved.extra["previous_parent"] == "engineering"


def test_a_group_moved_to_the_top_level_leaves_the_groups_above(tree, admin_user, user):
    _staff, _engineering, backend, _sales = tree
    services.add_members(group=backend, users=[user], actor=admin_user)

    services.set_group_parent(group=backend, parent=None, actor=admin_user)

    assert effective_group_ids(user_id=user.pk) == {backend.pk}
    assert not services.set_group_parent(group=backend, parent=None, actor=admin_user)


def test_effective_groups_cost_one_query_with_10000_members(
    tree, admin_user, user, django_assert_num_queries
):
    _staff, engineering, backend, _sales = tree
    crowd = User.objects.bulk_create(
        User(username=f"member{n:05d}", email=f"member{n:05d}@example.com") for n in range(10_000)
    )
    crowd_ids = list(
        User.objects.filter(username__startswith="member").values_list("pk", flat=True)
    )
    Membership.objects.bulk_create(
        [Membership(user_id=pk, group_id=backend.pk) for pk in crowd_ids], batch_size=1000
    )
    services.add_members(group=backend, users=[user], actor=admin_user)
    assert len(crowd) == 10_000

    # The user's memberships joined to the group closure: never the other members.
    with django_assert_num_queries(1):
        ids = effective_group_ids(user_id=user.pk)
    assert engineering.pk in ids

    with django_assert_num_queries(1):
        members = effective_member_ids(group=engineering)
    assert len(members) == 10_001


def test_effective_groups_of_a_user_in_no_group_cost_one_query(
    tree, user, django_assert_num_queries
):
    with django_assert_num_queries(1):
        assert effective_group_ids(user_id=user.pk) == frozenset()


# --- Cycles -------------------------------------------------------------------------------------


def test_a_group_can_be_put_inside_a_group_beside_it(tree, admin_user):
    _staff, engineering, _backend, sales = tree

    assert services.set_group_parent(group=sales, parent=engineering, actor=admin_user)


@pytest.mark.parametrize("inside", ["itself", "child", "grandchild"])
def test_a_group_put_inside_itself_or_a_subgroup_is_refused(tree, admin_user, inside):
    staff, engineering, backend, _sales = tree
    target = {"itself": staff, "child": engineering, "grandchild": backend}[inside]

    with pytest.raises(ValidationError, match="cannot be put inside"):
        services.set_group_parent(group=staff, parent=target, actor=admin_user)

    assert GroupProfile.objects.get(group=staff).parent is None
    assert not events(AuditEvent.Type.GROUP_PARENT_CHANGED)


# --- Creating, renaming, deleting ----------------------------------------------------------------


def test_creating_a_group_is_audited_with_its_parent(admin_user):
    top = services.create_group(name="staff", actor=admin_user)
    services.create_group(
        name="engineering", parent=top, description=" Builders ", actor=admin_user
    )

    engineering = Group.objects.get(name="engineering")
    assert engineering.profile.parent == top
    assert engineering.profile.description == "Builders"
    created = events(AuditEvent.Type.GROUP_CREATED)
    assert [(row.extra["group"], row.extra["parent"]) for row in created] == [
        ("staff", None),
        ("engineering", "staff"),
    ]
    assert all(row.actor == admin_user for row in created)


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Enter a group name"), ("  ", "Enter a group name"), ("x" * 151, "at most 150")],
)
def test_a_group_without_a_proper_name_is_refused(admin_user, name, message):
    services.create_group(name="fine", actor=admin_user)

    with pytest.raises(ValidationError, match=message):
        services.create_group(name=name, actor=admin_user)

    assert list(Group.objects.values_list("name", flat=True)) == ["fine"]


def test_a_name_another_group_has_in_any_letter_case_is_refused(admin_user):
    sales = services.create_group(name="Sales", actor=admin_user)
    services.rename_group(group=sales, name="sales", actor=admin_user)  # its own name: fine

    with pytest.raises(ValidationError, match="already exists"):
        services.create_group(name="SALES", actor=admin_user)


def test_renaming_a_group_is_audited_with_the_old_name(tree, admin_user):
    _staff, engineering, _backend, _sales = tree

    assert services.rename_group(group=engineering, name="Engineering", actor=admin_user)

    assert Group.objects.get(pk=engineering.pk).name == "Engineering"
    [renamed] = events(AuditEvent.Type.GROUP_CHANGED, fields=["name"])
    assert renamed.extra["previous_name"] == "engineering"
    assert renamed.extra["group"] == "Engineering"
    assert not services.rename_group(group=engineering, name="Engineering", actor=admin_user)
    assert len(events(AuditEvent.Type.GROUP_CHANGED, fields=["name"])) == 1


def test_renaming_to_a_taken_name_is_refused(tree, admin_user):
    _staff, engineering, _backend, _sales = tree
    services.rename_group(group=engineering, name="eng", actor=admin_user)

    with pytest.raises(ValidationError, match="already exists"):
        services.rename_group(group=engineering, name="Sales", actor=admin_user)

    assert Group.objects.get(pk=engineering.pk).name == "eng"


def test_deleting_a_group_removes_its_members_each_audited(tree, admin_user, user):
    _staff, _engineering, backend, _sales = tree
    bob = make_user("bob")
    services.add_members(group=backend, users=[user, bob], actor=admin_user)
    backend_id = backend.pk

    assert services.delete_group(group=backend, actor=admin_user) == 2

    assert not Group.objects.filter(name="backend").exists()
    assert effective_group_ids(user_id=user.pk) == frozenset()
    removed = events(AuditEvent.Type.GROUP_MEMBER_REMOVED, reason="group_deleted")
    assert sorted(row.subject_repr for row in removed) == ["alice", "bob"]
    [deleted] = events(AuditEvent.Type.GROUP_DELETED)
    assert deleted.extra == {"group": "backend", "group_id": backend_id, "members_removed": 2}
    assert deleted.actor == admin_user


def test_deleting_a_group_that_contains_groups_is_refused(tree, admin_user, user):
    staff, engineering, backend, _sales = tree
    services.add_members(group=engineering, users=[user], actor=admin_user)
    services.delete_group(group=backend, actor=admin_user)  # no subgroups: deleted

    with pytest.raises(ValidationError, match="contains other groups \\(engineering, sales\\)"):
        services.delete_group(group=staff, actor=admin_user)

    assert Group.objects.filter(pk=staff.pk).exists()
    assert effective_group_ids(user_id=user.pk) == {engineering.pk, staff.pk}
    assert not events(AuditEvent.Type.GROUP_DELETED, group="staff")
    # Below the services too: the database refuses to orphan a subgroup.
    with pytest.raises(RestrictedError):
        staff.delete()


# --- Members ------------------------------------------------------------------------------------


def test_adding_members_audits_each_new_member_once(tree, admin_user, user):
    _staff, engineering, _backend, _sales = tree
    bob = make_user("bob")

    added = services.add_members(group=engineering, users=[user, bob, user], actor=admin_user)
    again = services.add_members(group=engineering, users=[user], actor=admin_user)

    assert [u.username for u in added] == ["alice", "bob"]
    assert again == []
    rows = events(AuditEvent.Type.GROUP_MEMBER_ADDED)
    assert sorted(row.subject_repr for row in rows) == ["alice", "bob"]
    assert all(row.extra["group"] == "engineering" for row in rows)
    assert all(row.actor == admin_user for row in rows)


def test_removing_members_audits_only_those_who_were_members(tree, admin_user, user):
    _staff, engineering, _backend, _sales = tree
    bob = make_user("bob")
    services.add_members(group=engineering, users=[user], actor=admin_user)

    removed = services.remove_members(group=engineering, users=[user, bob], actor=admin_user)

    assert [u.username for u in removed] == ["alice"]
    assert effective_group_ids(user_id=user.pk) == frozenset()
    [row] = events(AuditEvent.Type.GROUP_MEMBER_REMOVED)
    assert (row.subject, row.extra["reason"]) == (user, "removed")


def test_set_user_groups_adds_and_removes_through_the_services(tree, admin_user, user):
    staff, engineering, _backend, sales = tree
    services.add_members(group=engineering, users=[user], actor=admin_user)

    services.set_user_groups(user=user, groups=[sales, staff], actor=admin_user)

    assert set(user.groups.values_list("name", flat=True)) == {"sales", "staff"}
    assert [r.extra["group"] for r in events(AuditEvent.Type.GROUP_MEMBER_REMOVED)] == [
        "engineering"
    ]
    assert sorted(r.extra["group"] for r in events(AuditEvent.Type.GROUP_MEMBER_ADDED)) == [
        "engineering",
        "sales",
        "staff",
    ]


# --- Who may -------------------------------------------------------------------------------------


def test_a_staff_member_with_the_group_permissions_manages_groups(group_admin, user):
    group = services.create_group(name="support", actor=group_admin)
    services.add_members(group=group, users=[user], actor=group_admin)
    services.rename_group(group=group, name="help desk", actor=group_admin)
    services.remove_members(group=group, users=[user], actor=group_admin)
    services.delete_group(group=group, actor=group_admin)

    assert not Group.objects.exists()


def test_a_staff_member_without_the_group_permissions_is_refused(group_admin, user):
    services.create_group(name="allowed", actor=group_admin)
    group_admin.user_permissions.clear()
    plain_staff = User.objects.get(pk=group_admin.pk)

    with pytest.raises(PermissionDenied):
        services.create_group(name="support", actor=plain_staff)
    group = Group.objects.get(name="allowed")
    with pytest.raises(PermissionDenied):
        services.add_members(group=group, users=[user], actor=plain_staff)
    with pytest.raises(PermissionDenied):
        services.delete_group(group=group, actor=plain_staff)
    with pytest.raises(PermissionDenied):
        services.create_group(name="sneaky", actor=user)  # not staff at all


def test_only_a_superuser_adds_staff_or_superusers_to_a_group(group_admin, admin_user, user):
    group = services.create_group(name="support", actor=group_admin)
    services.add_members(group=group, users=[user], actor=group_admin)

    for person in (admin_user, group_admin):
        with pytest.raises(PermissionDenied):
            services.add_members(group=group, users=[person], actor=group_admin)

    assert set(group.user_set.values_list("username", flat=True)) == {"alice"}
    services.add_members(group=group, users=[admin_user], actor=admin_user)


def test_only_a_superuser_changes_a_group_that_carries_permissions(group_admin, admin_user, user):
    group = services.create_group(name="auditors", actor=group_admin)
    services.add_members(group=group, users=[user], actor=group_admin)
    view_audit = Permission.objects.get(codename="view_auditevent")

    with pytest.raises(PermissionDenied):
        services.set_group_permissions(group=group, permissions=[view_audit], actor=group_admin)
    services.set_group_permissions(group=group, permissions=[view_audit], actor=admin_user)
    bob = make_user("bob")
    with pytest.raises(PermissionDenied, match="administration permissions"):
        services.add_members(group=group, users=[bob], actor=group_admin)

    services.add_members(group=group, users=[bob], actor=admin_user)
    [changed] = events(AuditEvent.Type.GROUP_CHANGED, fields=["permissions"])
    assert changed.extra["permissions_added"] == ["accounts.view_auditevent"]


def test_the_operator_without_an_actor_may_manage_groups(user):
    group = services.create_group(name="support", actor=None)
    services.add_members(group=group, users=[user], actor=None)

    [row] = events(AuditEvent.Type.GROUP_MEMBER_ADDED)
    assert row.actor is None
    assert row.subject == user
