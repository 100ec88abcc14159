"""The group admin (accounts/admin_groups.py): every change through the group services, the
refusals as form errors; and the user admin's group field through the same services."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.admin_groups import GroupAdmin
from accounts.groups import effective_group_ids
from accounts.models import AuditEvent, GroupProfile
from oauth_clients import services as registry
from oauth_clients.models import Client as App
from tests.accounts.test_groups import GROUP_PERMISSIONS, events, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()
ADD_URL = "/admin/auth/group/add/"
LIST_URL = "/admin/auth/group/"


def change_url(group: Group) -> str:
    return reverse("admin:auth_group_change", args=[group.pk])


def form(name: str, *, parent: Group | None = None, **fields: str) -> dict[str, object]:
    return {
        "name": name,
        "description": "",
        "parent": parent.pk if parent else "",
        "add_members": "",
        "remove_members": "",
        **fields,
    }


@pytest.fixture
def admin_client(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def group_admin(db):
    admin = make_user("groupadmin", is_staff=True)
    admin.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="auth", codename__in=[*GROUP_PERMISSIONS, "view_group"]
        )
    )
    return admin


@pytest.fixture
def group_admin_client(group_admin) -> Client:
    client = Client()
    client.force_login(group_admin)
    return client


@pytest.fixture
def tree(admin_user):
    staff = services.create_group(name="staff", actor=admin_user)
    engineering = services.create_group(name="engineering", parent=staff, actor=admin_user)
    backend = services.create_group(name="backend", parent=engineering, actor=admin_user)
    return staff, engineering, backend


def test_the_group_admin_replaces_djangos():
    from django.contrib import admin

    assert isinstance(admin.site.get_model_admin(Group), GroupAdmin)


def test_the_list_shows_parent_member_count_and_subgroups(admin_client, tree, admin_user, user):
    _staff, _engineering, backend = tree
    services.add_members(group=backend, users=[user, make_user("bob")], actor=admin_user)

    response = admin_client.get(LIST_URL)

    assert response.status_code == HTTPStatus.OK
    rows = {group.name: group for group in response.context["cl"].result_list}
    assert (rows["backend"]._member_count, rows["backend"]._subgroup_count) == (2, 0)
    assert (rows["engineering"]._member_count, rows["engineering"]._subgroup_count) == (0, 1)
    assert '<td class="field-parent_group">engineering</td>' in response.content.decode()


def test_creating_a_group_with_parent_and_members_is_audited(admin_client, tree, admin_user, user):
    staff, _engineering, _backend = tree

    response = admin_client.post(
        ADD_URL, form("sales", parent=staff, description="Sells", add_members="alice")
    )

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    sales = Group.objects.get(name="sales")
    assert (sales.profile.parent, sales.profile.description) == (staff, "Sells")
    assert effective_group_ids(user_id=user.pk) == {sales.pk, staff.pk}
    [created] = events(AuditEvent.Type.GROUP_CREATED, group="sales")
    assert (created.actor, created.extra["parent"]) == (admin_user, "staff")
    assert created.ip == "127.0.0.1"
    [added] = events(AuditEvent.Type.GROUP_MEMBER_ADDED, group="sales")
    assert added.subject == user


def test_changing_name_parent_and_members_goes_through_the_services(
    admin_client, tree, admin_user, user
):
    staff, _engineering, backend = tree
    bob = make_user("bob")
    services.add_members(group=backend, users=[bob], actor=admin_user)

    response = admin_client.post(
        change_url(backend),
        form("platform", parent=staff, add_members="alice", remove_members="bob"),
    )

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    backend.refresh_from_db()
    assert backend.name == "platform"
    assert GroupProfile.objects.get(group=backend).parent == staff
    assert list(backend.user_set.values_list("username", flat=True)) == ["alice"]
    assert events(AuditEvent.Type.GROUP_CHANGED, fields=["name"])[0].extra["previous_name"] == (
        "backend"
    )
    [moved] = events(AuditEvent.Type.GROUP_PARENT_CHANGED)
    assert (moved.extra["previous_parent"], moved.extra["parent"]) == ("engineering", "staff")
    [removed] = events(AuditEvent.Type.GROUP_MEMBER_REMOVED)
    assert removed.subject == bob
    assert events(AuditEvent.Type.GROUP_MEMBER_ADDED, group="platform")[0].subject == user


def test_saving_without_changes_writes_no_audit_row(admin_client, tree):
    _staff, engineering, backend = tree
    before = AuditEvent.objects.count()

    response = admin_client.post(change_url(backend), form("backend", parent=engineering))

    assert response.status_code == HTTPStatus.FOUND
    assert AuditEvent.objects.count() == before


def test_the_change_page_lists_members_and_subgroups(admin_client, tree, admin_user, user):
    _staff, engineering, backend = tree
    bob = make_user("bob")
    services.add_members(group=engineering, users=[user, bob], actor=admin_user)
    services.deactivate_user(user=bob, actor=admin_user)

    page = admin_client.get(change_url(engineering)).content.decode()

    assert "2 members." in page
    assert f"?groups__id__exact={engineering.pk}" in page
    assert ">alice</a>" in page
    assert ">bob</a> (deactivated)" in page
    assert f'<a href="{change_url(backend)}">backend</a>' in page


def test_the_change_page_shows_the_apps_a_group_reaches(admin_client, tree, admin_user):
    """The group's page names the apps it is assigned to, those its members reach
    through a group above it, and the app roles it holds."""
    staff, _engineering, backend = tree
    assert "No app is assigned" in admin_client.get(change_url(backend)).content.decode()

    wiki = App.objects.create(
        client_id="wiki", name="Wiki", redirect_uris="https://wiki.example/cb"
    )
    ci = App.objects.create(client_id="ci", name="CI", redirect_uris="https://ci.example/cb")
    registry.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    registry.assign(client=wiki, group=staff, actor=admin_user)
    registry.assign(client=ci, group=backend, actor=admin_user)
    role = registry.define_role(client=ci, name="deployer", actor=admin_user)
    registry.grant_role(role=role, group=backend, actor=admin_user)

    page = admin_client.get(change_url(backend)).content.decode()
    wiki_url = reverse("admin:oauth_clients_client_change", args=[wiki.pk])
    ci_url = reverse("admin:oauth_clients_client_change", args=[ci.pk])
    assert f'<a href="{ci_url}">CI</a> (assigned)' in page
    assert f'<a href="{wiki_url}">Wiki</a> (through staff)' in page
    assert f'<a href="{ci_url}">CI</a> (role deployer)' in page
    assert "No app is assigned" not in page
    # The group above reaches only what is assigned to it or above it.
    staff_page = admin_client.get(change_url(staff)).content.decode()
    assert f'<a href="{wiki_url}">Wiki</a> (assigned)' in staff_page
    assert f'<a href="{ci_url}">' not in staff_page


def test_moving_a_group_beside_is_fine_but_inside_its_own_subgroup_is_a_form_error(
    admin_client, tree
):
    staff, engineering, backend = tree
    sales = Group.objects.create(name="sales")
    assert admin_client.post(change_url(sales), form("sales", parent=engineering)).status_code == (
        HTTPStatus.FOUND
    )

    response = admin_client.post(change_url(staff), form("staff", parent=backend))

    assert response.status_code == HTTPStatus.OK
    errors = response.context["adminform"].form.errors
    assert errors["parent"] == [
        "staff cannot be put inside backend: backend is staff itself or one of its subgroups."
    ]
    assert GroupProfile.objects.get(group=staff).parent is None
    assert not events(AuditEvent.Type.GROUP_PARENT_CHANGED, group="staff")


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"add_members": "alice nobody"}, "add_members", "No user named: nobody."),
        ({"add_members": "alice", "remove_members": "alice"}, "remove_members", "Both added"),
        ({"name": "Staff"}, "name", "A group named Staff already exists."),
    ],
)
def test_bad_member_lists_and_names_are_form_errors(
    admin_client, tree, user, fields, field, message
):
    _staff, _engineering, _backend = tree
    ok = admin_client.post(ADD_URL, form("sales", add_members="alice"))
    assert ok.status_code == HTTPStatus.FOUND

    response = admin_client.post(ADD_URL, {**form("support"), **fields})

    assert response.status_code == HTTPStatus.OK
    assert any(message in error for error in response.context["adminform"].form.errors[field])
    assert not Group.objects.filter(name__in=["support", "Staff"]).exists()


def test_a_group_admin_manages_people_but_not_staff_or_permissions(
    group_admin_client, tree, admin_user, user
):
    _staff, engineering, _backend = tree
    ok = group_admin_client.post(change_url(engineering), form("engineering", add_members="alice"))
    assert ok.status_code == HTTPStatus.FOUND

    response = group_admin_client.post(
        change_url(engineering), form("engineering", add_members="root")
    )

    assert response.status_code == HTTPStatus.OK
    assert response.context["adminform"].form.errors["add_members"] == [
        "Only a superuser may add or remove: root."
    ]
    assert "permissions" not in response.context["adminform"].form.fields
    assert list(engineering.user_set.values_list("username", flat=True)) == ["alice"]


def test_a_group_admin_cannot_change_who_is_in_a_group_with_permissions(
    group_admin_client, tree, admin_user, user
):
    _staff, engineering, backend = tree
    view_audit = Permission.objects.get(codename="view_auditevent")
    services.set_group_permissions(group=backend, permissions=[view_audit], actor=admin_user)
    ok = group_admin_client.post(change_url(engineering), form("engineering", add_members="alice"))
    assert ok.status_code == HTTPStatus.FOUND

    response = group_admin_client.post(
        change_url(backend), form("backend", parent=engineering, add_members="alice")
    )

    assert response.status_code == HTTPStatus.OK
    assert "administration permissions" in str(
        response.context["adminform"].form.non_field_errors()
    )
    assert not backend.user_set.exists()


def test_a_superuser_sets_a_groups_permissions_audited(admin_client, tree):
    _staff, engineering, backend = tree
    view_audit = Permission.objects.get(codename="view_auditevent")

    response = admin_client.post(
        change_url(backend), form("backend", parent=engineering, permissions=[view_audit.pk])
    )

    assert response.status_code == HTTPStatus.FOUND
    assert list(backend.permissions.all()) == [view_audit]
    [changed] = events(AuditEvent.Type.GROUP_CHANGED, fields=["permissions"])
    assert changed.extra["permissions_added"] == ["accounts.view_auditevent"]


def test_deleting_a_group_in_the_admin_is_audited(admin_client, tree, admin_user, user):
    _staff, _engineering, backend = tree
    services.add_members(group=backend, users=[user], actor=admin_user)
    url = reverse("admin:auth_group_delete", args=[backend.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == HTTPStatus.FOUND
    assert not Group.objects.filter(name="backend").exists()
    assert events(AuditEvent.Type.GROUP_DELETED)[0].extra["members_removed"] == 1
    assert events(AuditEvent.Type.GROUP_MEMBER_REMOVED)[0].subject == user


def test_a_group_with_subgroups_cannot_be_deleted_in_the_admin(admin_client, tree):
    staff, _engineering, _backend = tree
    url = reverse("admin:auth_group_delete", args=[staff.pk])

    page = admin_client.get(url)
    response = admin_client.post(url, {"post": "yes"})

    assert page.context["protected"]
    assert response.status_code == HTTPStatus.OK
    assert Group.objects.filter(pk=staff.pk).exists()
    assert not events(AuditEvent.Type.GROUP_DELETED)


def test_deleting_a_group_and_its_subgroups_together_deletes_the_deepest_first(admin_client, tree):
    staff, engineering, backend = tree
    Group.objects.create(name="untouched")

    response = admin_client.post(
        LIST_URL,
        {
            "action": "delete_selected",
            "post": "yes",
            "_selected_action": [staff.pk, engineering.pk, backend.pk],
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    assert list(Group.objects.values_list("name", flat=True)) == ["untouched"]
    assert [row.extra["group"] for row in events(AuditEvent.Type.GROUP_DELETED)] == [
        "backend",
        "engineering",
        "staff",
    ]


# --- The user admin's group field ----------------------------------------------------------------


def test_the_user_admins_group_field_changes_membership_through_the_services(
    admin_client, tree, user
):
    staff, engineering, backend = tree
    url = reverse("admin:accounts_user_change", args=[user.pk])
    data = admin_client.get(url).context["adminform"].form.initial
    fields = {
        key: value
        for key, value in data.items()
        if key in {"username", "email", "first_name", "last_name", "is_active", "date_joined"}
    }
    fields["date_joined_0"], fields["date_joined_1"] = (
        user.date_joined.strftime("%Y-%m-%d"),
        user.date_joined.strftime("%H:%M:%S"),
    )

    response = admin_client.post(url, {**fields, "groups": [backend.pk, staff.pk]})

    assert response.status_code == HTTPStatus.FOUND, response.context["adminform"].form.errors
    assert effective_group_ids(user_id=user.pk) == {backend.pk, engineering.pk, staff.pk}
    added = events(AuditEvent.Type.GROUP_MEMBER_ADDED)
    assert sorted(row.extra["group"] for row in added) == ["backend", "staff"]
    assert all(row.subject == user for row in added)
