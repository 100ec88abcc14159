"""build_claims with an app (no HTTP): roles, the filtered groups claim and mapped claims."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import GroupProfile
from accounts.services import rebuild_group_closure
from oauth_clients import services
from oauth_clients.access import APP_HAS_ROLES_ATTR, EffectiveGroups
from oauth_clients.oidc.claims import build_claims


@pytest.fixture
def groups(db, user):
    """company ⊃ wiki-admins ⊃ wiki-ops (alice in wiki-ops), and sales beside them."""
    company = Group.objects.create(name="company")
    admins = Group.objects.create(name="wiki-admins")
    ops = Group.objects.create(name="wiki-ops")
    Group.objects.create(name="sales")
    GroupProfile.objects.create(group=admins, parent=company)
    GroupProfile.objects.create(group=ops, parent=admins)
    rebuild_group_closure()  # nesting written without the group services
    user.groups.add(ops)
    return {"company": company, "admins": admins, "ops": ops}


def test_a_client_adds_its_roles_filtered_groups_and_mapped_claims(
    web_client, user, admin_user, groups
):
    role = services.define_role(client=web_client, name="editor", actor=admin_user)
    services.grant_role(role=role, group=groups["company"], actor=admin_user)
    services.define_role(client=web_client, name="viewer", actor=admin_user)
    services.set_claim_mapping(
        client=web_client,
        actor=admin_user,
        groups_filter="prefix",
        groups_prefix="wiki-",
        claim_attributes={"mail": "email"},
    )
    claims = build_claims(user=user, scopes=["openid", "groups"], client=web_client)
    assert claims == {
        "sub": str(user.pk),
        "roles": ["editor"],
        "groups": ["wiki-admins", "wiki-ops"],  # not company, never sales
        "mail": "alice@example.com",
    }


def test_without_a_client_or_the_scope_nothing_of_the_app_is_released(web_client, user, groups):
    assert build_claims(user=user, scopes=["groups"])["groups"] == [
        "company",
        "wiki-admins",
        "wiki-ops",
    ]
    assert build_claims(user=user, scopes=["openid"], client=web_client) == {"sub": str(user.pk)}


def test_a_list_filter_sends_only_the_listed_groups(web_client, user, admin_user, groups):
    services.set_claim_mapping(
        client=web_client, actor=admin_user, groups_filter="list", claim_groups=[groups["company"]]
    )
    claims = build_claims(user=user, scopes=["groups"], client=web_client)
    assert claims["groups"] == ["company"]


def test_the_groups_are_read_once_and_an_app_known_to_have_no_roles_costs_nothing(
    web_client, user, groups, django_assert_num_queries
):
    setattr(web_client, APP_HAS_ROLES_ATTR, False)  # as read with the token row
    read = EffectiveGroups(user_id=user.pk)
    with django_assert_num_queries(0):
        build_claims(user=user, scopes=["openid"], client=web_client, groups=read)
    with django_assert_num_queries(1):
        build_claims(user=user, scopes=["groups"], client=web_client, groups=read)
    with django_assert_num_queries(0):
        build_claims(user=user, scopes=["groups"], client=web_client, groups=read)
