"""Who may use which app: access policy, assignments, nested groups, roles, claim mapping.

The rules are `oauth_clients.access`; the changes `oauth_clients.services` (each audited).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import AuditEvent, GroupProfile
from accounts.services import rebuild_group_closure
from oauth_clients import access, services
from oauth_clients.models import (
    RESERVED_CLAIM_NAMES,
    AppRole,
    Assignment,
    Client,
    RoleGrant,
    validate_role_name,
)
from tests.clients.conftest import issue_tokens


def make_user(username: str, **fields):
    return get_user_model().objects.create_user(username, f"{username}@example.com", None, **fields)


def make_group(name: str, *, parent: Group | None = None) -> Group:
    group = Group.objects.create(name=name)
    if parent is not None:
        GroupProfile.objects.create(group=group, parent=parent)
        rebuild_group_closure(groups=[group])  # nesting written without the group services
    return group


@pytest.fixture
def wiki(web_client):
    return web_client[0]


@pytest.fixture
def engineering(db):
    """engineering ⊃ backend ⊃ databases: a member of databases is a member of all three."""
    engineering = make_group("engineering")
    backend = make_group("backend", parent=engineering)
    make_group("databases", parent=backend)
    return engineering


def change_events(client: Client, change: str):
    return AuditEvent.objects.filter(
        type=AuditEvent.Type.CLIENT_CHANGED, client=client, extra__change=change
    )


# --- open vs assigned


def test_an_open_app_lets_every_active_account_in_and_no_inactive_one(wiki, user):
    assert wiki.access_policy == Client.AccessPolicy.OPEN
    assert access.may_use(user=user, client=wiki)
    user.is_active = False
    assert not access.may_use(user=user, client=wiki)


def test_a_disabled_app_lets_nobody_in(wiki, user):
    assert access.may_use(user=user, client=wiki)
    wiki.is_active = False
    assert not access.may_use(user=user, client=wiki)


def test_an_assigned_app_lets_in_only_assigned_users(wiki, user, admin_user):
    services.assign(client=wiki, user=user, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert access.may_use(user=user, client=wiki)
    stranger = make_user("mallory")
    assert not access.may_use(user=stranger, client=wiki)


def test_a_direct_user_assignment_is_enough(wiki, user, admin_user):
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert not access.may_use(user=user, client=wiki)
    services.assign(client=wiki, user=user, actor=admin_user)
    assert access.may_use(user=user, client=wiki)
    services.unassign(client=wiki, user=user, actor=admin_user)
    assert not access.may_use(user=user, client=wiki)


def test_a_member_of_a_nested_group_may_use_an_app_assigned_to_an_ancestor(
    wiki, user, admin_user, engineering
):
    services.assign(client=wiki, group=engineering, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    user.groups.add(Group.objects.get(name="databases"))
    assert access.may_use(user=user, client=wiki)
    # ... and with the effective groups passed in.
    assert access.may_use(user=user, client=wiki, group_ids=_effective(user))
    # A member of the parent is not a member of the child.
    services.unassign(client=wiki, group=engineering, actor=admin_user)
    services.assign(client=wiki, group=Group.objects.get(name="databases"), actor=admin_user)
    other = make_user("bob")
    other.groups.add(engineering)
    assert access.may_use(user=user, client=wiki)
    assert not access.may_use(user=other, client=wiki)
    assert not access.may_use(user=other, client=wiki, group_ids=_effective(other))


def _effective(user):
    from accounts.groups import effective_group_ids

    return effective_group_ids(user_id=user.pk)


def test_a_user_in_no_assigned_group_may_not_use_the_app(wiki, user, admin_user, engineering):
    member = make_user("bob")
    member.groups.add(engineering)
    services.assign(client=wiki, group=engineering, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert access.may_use(user=member, client=wiki)
    user.groups.add(make_group("sales"))
    assert not access.may_use(user=user, client=wiki)


def test_a_deactivated_group_member_may_not_use_the_app(wiki, user, admin_user, engineering):
    user.groups.add(engineering)
    services.assign(client=wiki, group=engineering, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert access.may_use(user=user, client=wiki)
    user.is_active = False
    user.save()
    assert not access.may_use(user=user, client=wiki)
    assert access.roles_for(user=user, client=wiki) == []
    assert access.apps_for(user=user) == []


def test_a_group_deleted_while_assigned_leaves_no_assignment_and_no_access(wiki, user, admin_user):
    group = make_group("contractors")
    user.groups.add(group)
    services.assign(client=wiki, group=group, actor=admin_user)
    role = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=role, group=group, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert access.may_use(user=user, client=wiki)
    assert access.roles_for(user=user, client=wiki) == ["editor"]

    group.delete()
    assert not Assignment.objects.filter(client=wiki).exists()
    assert not RoleGrant.objects.filter(role=role).exists()
    assert not access.may_use(user=user, client=wiki)
    assert access.roles_for(user=user, client=wiki) == []


def test_an_assignment_names_exactly_one_group_or_user_once(wiki, user):
    group = make_group("ops")
    Assignment.objects.create(client=wiki, group=group)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(client=wiki, group=group)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(client=wiki, group=group, user=user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(client=wiki)


def test_assign_and_unassign_refuse_both_or_neither(wiki, user, admin_user):
    group = make_group("ops")
    services.assign(client=wiki, group=group, actor=admin_user)
    with pytest.raises(ValidationError, match="exactly one"):
        services.assign(client=wiki, group=group, user=user, actor=admin_user)
    with pytest.raises(ValidationError, match="exactly one"):
        services.unassign(client=wiki, actor=admin_user)


# --- audit and the users who lose access


def test_every_access_change_is_audited_with_the_actor(wiki, user, admin_user):
    group = make_group("ops")
    services.assign(client=wiki, group=group, actor=admin_user)
    services.assign(client=wiki, group=group, actor=admin_user)  # again: no second row
    services.assign(client=wiki, user=user, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    services.unassign(client=wiki, user=user, actor=admin_user)

    added = change_events(wiki, "assignment_added").order_by("id")
    assert [(e.extra.get("group"), e.extra.get("username")) for e in added] == [
        ("ops", None),
        (None, "alice"),
    ]
    assert added[1].subject == user
    assert all(e.actor == admin_user for e in added)
    policy = change_events(wiki, "access_policy").get()
    assert policy.extra["access_policy"] == {"before": "open", "after": "assigned"}
    assert policy.extra["fields"] == ["access_policy"]
    removed = change_events(wiki, "assignment_removed").get()
    assert removed.subject == user
    assert removed.actor == admin_user


def test_opening_an_assigned_app_is_audited_as_a_weakening(wiki, admin_user):
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert services.set_access_policy(client=wiki, policy="assigned", actor=admin_user) == (
        services.AccessChange(changed=False, users_losing_access=[])
    )
    services.set_access_policy(client=wiki, policy="open", actor=admin_user)
    events = change_events(wiki, "access_policy").order_by("id")
    assert [e.extra["weakened"] for e in events] == [[], ["opens the app to every active account"]]


def test_unknown_policy_is_refused(wiki, admin_user):
    with pytest.raises(ValidationError):
        services.set_access_policy(client=wiki, policy="everyone", actor=admin_user)
    wiki.refresh_from_db()
    assert wiki.access_policy == "open"


def test_unassigning_answers_the_token_holders_who_lose_access(wiki, user, admin_user):
    group = make_group("ops")
    stays = make_user("bob")
    stays.groups.add(group)
    services.assign(client=wiki, group=group, actor=admin_user)
    services.assign(client=wiki, user=user, actor=admin_user)
    issue_tokens(wiki, user)
    issue_tokens(wiki, stays)
    first = services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert first.users_losing_access == []  # both are assigned

    change = services.unassign(client=wiki, user=user, actor=admin_user)
    assert change.users_losing_access == [user.pk]
    assert change_events(wiki, "assignment_removed").get().extra["users_losing_access"] == 1


def test_switching_to_assigned_answers_every_unassigned_token_holder(wiki, user, admin_user):
    holder = make_user("bob")
    issue_tokens(wiki, user)
    issue_tokens(wiki, holder)
    services.assign(client=wiki, user=holder, actor=admin_user)
    change = services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    assert change.users_losing_access == [user.pk]
    assert access.token_holders_without_access(client=wiki) == [user.pk]


# --- roles


def test_roles_come_from_direct_and_nested_group_grants_sorted_and_unique(
    wiki, user, admin_user, engineering
):
    editor = services.define_role(client=wiki, name="editor", actor=admin_user)
    viewer = services.define_role(
        client=wiki, name="viewer", description="Reads pages", actor=admin_user
    )
    services.define_role(client=wiki, name="admin", actor=admin_user)  # granted to nobody
    services.grant_role(role=viewer, group=engineering, actor=admin_user)
    services.grant_role(role=viewer, user=user, actor=admin_user)
    services.grant_role(role=editor, group=Group.objects.get(name="backend"), actor=admin_user)
    user.groups.add(Group.objects.get(name="databases"))
    assert access.roles_for(user=user, client=wiki) == ["editor", "viewer"]
    assert access.roles_for(user=user, client=wiki, group_ids=_effective(user)) == [
        "editor",
        "viewer",
    ]
    assert access.roles_for(user=make_user("bob"), client=wiki) == []

    assert services.revoke_role(
        role=editor, group=Group.objects.get(name="backend"), actor=admin_user
    )
    assert not services.revoke_role(role=editor, user=user, actor=admin_user)
    assert access.roles_for(user=user, client=wiki) == ["viewer"]
    changes = list(
        AuditEvent.objects.filter(client=wiki, extra__fields=["roles"])
        .order_by("id")
        .values_list("extra__change", "extra__role")
    )
    assert changes == [
        ("role_defined", "editor"),
        ("role_defined", "viewer"),
        ("role_defined", "admin"),
        ("role_granted", "viewer"),
        ("role_granted", "viewer"),
        ("role_granted", "editor"),
        ("role_revoked", "editor"),
    ]


def test_roles_of_one_app_never_reach_another(wiki, user, admin_user, service_client):
    other, _secret = services.register_client(
        actor=admin_user,
        kind="web",
        name="Board",
        redirect_uris=["https://board.example.com/cb"],
    )
    role = services.define_role(client=other, name="editor", actor=admin_user)
    services.grant_role(role=role, user=user, actor=admin_user)
    assert access.roles_for(user=user, client=other) == ["editor"]
    assert access.roles_for(user=user, client=wiki) == []


def test_a_role_name_is_a_lower_case_slug(wiki, admin_user):
    validate_role_name("wiki:editor")
    assert services.define_role(client=wiki, name="team-lead_2", actor=admin_user)
    for bad in ("Editor", "2fa", "has space", "", "x" * 65):
        with pytest.raises(ValidationError):
            validate_role_name(bad)
        with pytest.raises(ValidationError):
            services.define_role(client=wiki, name=bad, actor=admin_user)


@pytest.mark.parametrize("name", ["email", "sub", "roles", "groups", "auth_time", "c_hash", "nbf"])
def test_a_role_named_like_a_reserved_claim_is_refused(wiki, admin_user, name):
    assert services.define_role(client=wiki, name="editor", actor=admin_user)
    assert name in RESERVED_CLAIM_NAMES
    with pytest.raises(ValidationError, match="reserved claim name"):
        validate_role_name(name)
    with pytest.raises(ValidationError, match="reserved claim name") as exc:
        services.define_role(client=wiki, name=name, actor=admin_user)
    assert "name" in exc.value.message_dict
    with pytest.raises(ValidationError, match="reserved claim name"):
        AppRole(client=wiki, name=name).full_clean()
    assert list(AppRole.objects.values_list("name", flat=True)) == ["editor"]


def test_deleting_a_role_removes_its_grants_and_is_audited(wiki, user, admin_user):
    role = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=role, user=user, actor=admin_user)
    assert access.roles_for(user=user, client=wiki) == ["editor"]
    services.delete_role(role=role, actor=admin_user)
    assert access.roles_for(user=user, client=wiki) == []
    assert change_events(wiki, "role_deleted").get().extra["grants"] == 1


# --- claims


def test_the_groups_claim_follows_the_apps_filter(wiki, user, admin_user):
    names = ["wiki-editors", "wiki-readers", "payroll", "engineering"]
    for name in names:
        make_group(name)
    assert access.groups_claim_for(user=user, client=wiki, group_names=names) == sorted(names)

    services.set_claim_mapping(
        client=wiki, groups_filter="prefix", groups_prefix="wiki-", actor=admin_user
    )
    assert access.groups_claim_for(user=user, client=wiki, group_names=names) == [
        "wiki-editors",
        "wiki-readers",
    ]
    services.set_claim_mapping(
        client=wiki,
        groups_filter="list",
        claim_groups=Group.objects.filter(name__in=["engineering", "wiki-readers"]),
        actor=admin_user,
    )
    assert access.groups_claim_for(user=user, client=wiki, group_names=names) == [
        "engineering",
        "wiki-readers",
    ]
    assert access.groups_claim_for(user=user, client=wiki, group_names=["payroll"]) == []
    event = change_events(wiki, "claim_mapping").latest("id")
    assert event.extra["claim_groups"] == {"before": [], "after": ["engineering", "wiki-readers"]}


def test_a_prefix_filter_needs_a_prefix(wiki, admin_user):
    services.set_claim_mapping(
        client=wiki, groups_filter="prefix", groups_prefix="wiki-", actor=admin_user
    )
    with pytest.raises(ValidationError, match="prefix"):
        services.set_claim_mapping(client=wiki, groups_prefix="", actor=admin_user)


def test_directory_attributes_map_to_the_apps_claim_names(wiki, user, admin_user):
    """employee_id, department and job_title (kept by an administrator in the user admin) reach
    an app only under the names its mapping gives them, and only when set."""
    user.employee_id, user.department, user.job_title = "E-1024", "Research", ""
    user.save()
    services.set_claim_mapping(
        client=wiki,
        claim_attributes={
            "employee_number": "employee_id",
            "dept": "department",
            "title": "job_title",
        },
        actor=admin_user,
    )
    assert access.mapped_claims(user=user, client=wiki) == {
        "employee_number": "E-1024",
        "dept": "Research",
    }
    wiki.refresh_from_db()
    services.set_claim_mapping(client=wiki, claim_attributes={}, actor=admin_user)
    assert access.mapped_claims(user=user, client=wiki) == {}


def test_mapped_claims_carry_allowed_attributes_under_the_apps_names(wiki, user, admin_user):
    changed = services.set_claim_mapping(
        client=wiki,
        claim_attributes={"mail": "email", "login": "username", "surname": "last_name"},
        roles_claim="app_roles",
        actor=admin_user,
    )
    assert changed == ["claim_attributes", "roles_claim"]
    assert access.mapped_claims(user=user, client=wiki) == {
        "login": "alice",
        "mail": "alice@example.com",
        "surname": "Liddell",
    }
    user.last_name = ""
    assert "surname" not in access.mapped_claims(user=user, client=wiki)
    event = change_events(wiki, "claim_mapping").get()
    assert event.actor == admin_user
    assert event.extra["roles_claim"] == "app_roles"
    # The same mapping again changes nothing and writes nothing.
    assert (
        services.set_claim_mapping(
            client=wiki,
            claim_attributes={"mail": "email", "login": "username", "surname": "last_name"},
            actor=admin_user,
        )
        == []
    )
    assert change_events(wiki, "claim_mapping").count() == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"claim_attributes": {"dept": "password"}}, "claim_attributes"),
        ({"claim_attributes": {"email": "email"}}, "claim_attributes"),
        ({"claim_attributes": {"roles": "username"}}, "claim_attributes"),
        ({"claim_attributes": {"has space": "email"}}, "claim_attributes"),
        ({"roles_claim": "email"}, "roles_claim"),
        ({"roles_claim": "groups"}, "roles_claim"),
        ({"groups_filter": "some"}, "groups_filter"),
        ({"roles_claim": "r", "claim_attributes": {"r": "email"}}, "claim_attributes"),
    ],
)
def test_a_claim_mapping_that_collides_or_leaks_is_refused(wiki, admin_user, arguments, field):
    assert services.set_claim_mapping(
        client=wiki, claim_attributes={"mail": "email"}, actor=admin_user
    )
    with pytest.raises(ValidationError) as exc:
        services.set_claim_mapping(client=wiki, actor=admin_user, **arguments)
    assert field in exc.value.message_dict
    wiki.refresh_from_db()
    assert wiki.claim_attributes == {"mail": "email"}
    assert wiki.roles_claim == "roles"


# --- the app launcher


def test_the_launcher_lists_open_apps_and_assigned_ones_only(
    wiki, user, admin_user, service_client
):
    group = make_group("finance")
    expenses, _s = services.register_client(
        actor=admin_user, kind="web", name="Expenses", redirect_uris=["https://x.example.com/cb"]
    )
    payroll, _s = services.register_client(
        actor=admin_user, kind="web", name="Payroll", redirect_uris=["https://p.example.com/cb"]
    )
    for app in (expenses, payroll):
        services.set_access_policy(client=app, policy="assigned", actor=admin_user)
    services.assign(client=expenses, group=group, actor=admin_user)
    user.groups.add(group)
    # Open apps and the assigned one; never the service (it signs no one in), nor Payroll.
    assert access.apps_for(user=user) == [expenses, wiki]
    services.disable_client(client=expenses, actor=admin_user)
    assert access.apps_for(user=user) == [wiki]


def test_the_preview_shows_the_roles_claim_exactly_when_tokens_carry_it(wiki, user, admin_user):
    """The admin's preview and the tokens share `access.app_claims`: an app that defines no
    roles gets no roles claim in either; once it defines one, both carry it (empty for a
    person granted none)."""
    services.set_claim_mapping(client=wiki, claim_attributes={"mail": "email"}, actor=admin_user)
    preview = access.claims_preview(user=user, client=wiki)
    assert preview["claims"] == {"mail": "alice@example.com"}
    assert preview["may_use"] is True

    services.define_role(client=wiki, name="editor", actor=admin_user)
    assert access.claims_preview(user=user, client=wiki)["claims"] == {
        "mail": "alice@example.com",
        "roles": [],
    }
