"""What the access rules cost: pinned query counts, with a 10,000-member group and 200 apps."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import GroupProfile
from accounts.services import rebuild_group_closure
from oauth_clients import access, services
from oauth_clients.models import Assignment, Client

MEMBERS = 10_000
APPS = 200


@pytest.fixture
def wiki(web_client):
    return web_client[0]


@pytest.fixture
def big_group(db, user):
    """company (10,000 members, alice among them) ⊃ engineering ⊃ platform."""
    company = Group.objects.create(name="company")
    engineering = Group.objects.create(name="engineering")
    platform = Group.objects.create(name="platform")
    GroupProfile.objects.create(group=engineering, parent=company)
    GroupProfile.objects.create(group=platform, parent=engineering)
    rebuild_group_closure()  # nesting written without the group services
    User = get_user_model()
    User.objects.bulk_create(
        User(username=f"member{i:05d}", email=f"member{i:05d}@example.com")
        for i in range(MEMBERS - 1)
    )
    Membership = User.groups.through
    Membership.objects.bulk_create(
        Membership(user_id=pk, group_id=company.pk)
        for pk in User.objects.filter(username__startswith="member").values_list("pk", flat=True)
    )
    user.groups.add(company)
    assert Membership.objects.filter(group=company).count() == MEMBERS
    return company


def fresh(client: Client) -> Client:
    return Client.objects.get(pk=client.pk)


def test_an_open_app_costs_no_query(wiki, user, django_assert_num_queries):
    wiki = fresh(wiki)
    with django_assert_num_queries(0):
        assert access.may_use(user=user, client=wiki)
        assert access.mapped_claims(user=user, client=wiki) == {}
        assert access.groups_claim_for(user=user, client=wiki, group_names=["a"]) == ["a"]


def test_an_assigned_app_costs_one_query_with_a_10000_member_group(
    wiki, user, admin_user, big_group, django_assert_num_queries
):
    services.assign(client=wiki, group=big_group, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    wiki = fresh(wiki)
    with django_assert_num_queries(1):  # assignments ⋈ memberships ⋈ the group closure
        assert access.may_use(user=user, client=wiki)
    outsider = get_user_model().objects.create_user("outsider")
    with django_assert_num_queries(1):
        assert not access.may_use(user=outsider, client=wiki)


def test_a_member_of_a_deep_subgroup_costs_the_same_one_query(
    wiki, admin_user, big_group, django_assert_num_queries
):
    services.assign(client=wiki, group=big_group, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    deep = get_user_model().objects.create_user("deep")
    deep.groups.add(Group.objects.get(name="platform"))
    wiki = fresh(wiki)
    with django_assert_num_queries(1):
        assert access.may_use(user=deep, client=wiki)


def test_with_the_effective_groups_known_a_check_is_one_query(
    wiki, user, admin_user, big_group, django_assert_num_queries
):
    from accounts.groups import effective_group_ids

    services.assign(client=wiki, group=big_group, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    role = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=role, group=big_group, actor=admin_user)
    groups = effective_group_ids(user_id=user.pk)
    wiki = fresh(wiki)
    with django_assert_num_queries(2):
        assert access.may_use(user=user, client=wiki, group_ids=groups)
        assert access.roles_for(user=user, client=wiki, group_ids=groups) == ["editor"]


def test_roles_cost_one_query_with_a_10000_member_group(
    wiki, user, admin_user, big_group, django_assert_num_queries
):
    for name in ("editor", "viewer", "admin"):
        role = services.define_role(client=wiki, name=name, actor=admin_user)
        services.grant_role(role=role, group=big_group, actor=admin_user)
    with django_assert_num_queries(1):
        assert access.roles_for(user=user, client=wiki) == ["admin", "editor", "viewer"]


def test_the_launcher_costs_one_query_with_200_apps(
    user, admin_user, big_group, django_assert_num_queries
):
    Client.objects.bulk_create(
        Client(
            client_id=f"app{i:03d}",
            name=f"App {i:03d}",
            kind=Client.Kind.WEB,
            client_type=Client.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Client.GRANT_AUTHORIZATION_CODE,
            redirect_uris=f"https://app{i}.example.com/cb",
            access_policy="assigned" if i % 2 else "open",
        )
        for i in range(APPS)
    )
    assigned = Client.objects.filter(access_policy="assigned").order_by("client_id")
    Assignment.objects.bulk_create(
        Assignment(client=client, group=big_group) for client in assigned[:50]
    )
    with django_assert_num_queries(1):
        apps = access.apps_for(user=user)
    assert len(apps) == APPS // 2 + 50
    outsider = get_user_model().objects.create_user("outsider")
    with django_assert_num_queries(1):
        assert len(access.apps_for(user=outsider)) == APPS // 2


@pytest.mark.parametrize("depth", [12, 40])
def test_a_deep_chain_of_groups_costs_the_same_and_never_overflows_the_parser(
    wiki, admin_user, depth, django_assert_num_queries
):
    """A chain of `depth` nested groups (top ⊃ level1 ⊃ … ⊃ the deepest): the check is one
    query of flat subqueries however deep the chain (the closure holds every depth). The check
    once nested one subquery per level, and SQLite refused eight levels with "parser stack
    overflow" (a 500 for every sign-in)."""
    chain = [Group.objects.create(name="level00")]
    for level in range(1, depth):
        group = Group.objects.create(name=f"level{level:02d}")
        GroupProfile.objects.create(group=group, parent=chain[-1])
        chain.append(group)
    rebuild_group_closure()
    services.assign(client=wiki, group=chain[0], actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    role = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=role, group=chain[0], actor=admin_user)
    deepest = get_user_model().objects.create_user("deepest")
    deepest.groups.add(chain[-1])
    outsider = get_user_model().objects.create_user("outsider")
    wiki = fresh(wiki)

    with django_assert_num_queries(1):
        assert access.may_use(user=deepest, client=wiki)
    with django_assert_num_queries(1):
        assert access.roles_for(user=deepest, client=wiki) == ["editor"]
    with django_assert_num_queries(1):
        assert [app.pk for app in access.apps_for(user=deepest)] == [wiki.pk]
    groups = access.EffectiveGroups(user_id=deepest.pk)
    with django_assert_num_queries(1):
        assert groups.names == sorted(group.name for group in chain)
    with django_assert_num_queries(1):
        assert not access.may_use(user=outsider, client=wiki)
    assert access.apps_for(user=outsider) == []


def test_an_answer_carried_for_one_app_is_not_used_for_another(
    wiki, user, admin_user, django_assert_num_queries
):
    """The access check and roles a token's query answered (`access.AppAccess`, on the user it
    loaded) are that app's only: asked about another app, the rules ask the database."""
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    wiki = fresh(wiki)
    setattr(
        user,
        access.APP_ACCESS_ATTR,
        access.AppAccess(client_id=wiki.pk + 1000, may_use=True, roles=("admin",)),
    )
    with django_assert_num_queries(2):
        assert not access.may_use(user=user, client=wiki)
        assert access.roles_for(user=user, client=wiki) == []
    setattr(user, access.APP_ACCESS_ATTR, access.AppAccess(client_id=wiki.pk, may_use=True))
    with django_assert_num_queries(1):  # the roles were not asked with it
        assert access.may_use(user=user, client=wiki)
        assert access.roles_for(user=user, client=wiki) == []
