"""The access check and the roles inside the hot lookups' own statement
(oauth_clients/oidc/app_access.py `annotate_app_access`): what they answer, on every lookup
that carries them, and how PostgreSQL's generic plan reads the access tables for them."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_refresh_token_model,
)

from accounts import services as group_services
from oauth_clients import services
from oauth_clients.access import APP_ACCESS_ATTR, AppAccess
from oauth_clients.oidc import token_policy, tokens
from oauth_clients.oidc.app_access import carry_app_access
from oauth_clients.oidc.tokens import hash_code, token_checksum
from tests import plans

# The tables the access check and the roles read.
ACCESS_TABLES = {
    "oauth_clients_assignment",
    "oauth_clients_approle",
    "oauth_clients_rolegrant",
    "accounts_user_groups",
    "accounts_groupclosure",
}


@pytest.fixture
def company(admin_user) -> Group:
    """company ⊃ team (created by the group services, so with their closure rows)."""
    company = group_services.create_group(name="company", actor=admin_user)
    group_services.create_group(name="team", parent=company, actor=admin_user)
    return company


@pytest.fixture
def assigned(web_client, admin_user, company) -> object:
    """The web app assigned to the company, `editor` granted to the team, `viewer` defined."""
    team = Group.objects.get(name="team")
    services.assign(client=web_client, group=company, actor=admin_user)
    services.set_access_policy(client=web_client, policy="assigned", actor=admin_user)
    editor = services.define_role(client=web_client, name="editor", actor=admin_user)
    services.grant_role(role=editor, group=team, actor=admin_user)
    services.define_role(client=web_client, name="viewer", actor=admin_user)
    return web_client


def carried(row) -> AppAccess:
    carry_app_access(row)
    return getattr(row.user, APP_ACCESS_ATTR)


def rows(issued: dict, code_hash: str | None = None) -> dict:
    """Each annotated lookup's row for the tokens `issued`."""
    access, refresh = (
        token_checksum(issued["access_token"]),
        token_checksum(issued["refresh_token"]),
    )
    found = {
        "access token": token_policy._ACCESS_TOKEN.first(access, get_access_token_model()),
        "refresh token": token_policy._REFRESH_TOKEN.first(refresh, get_refresh_token_model()),
        "introspected access token": tokens._INTROSPECT_ACCESS_TOKEN.first(
            access, get_access_token_model()
        ),
        "introspected refresh token": tokens._INTROSPECT_REFRESH_TOKEN.first(
            refresh, get_refresh_token_model()
        ),
    }
    if code_hash is not None:
        found["code"] = token_policy._GRANT.first(code_hash, get_grant_model())
    return found


def test_a_team_member_may_use_an_app_assigned_to_the_company_with_the_teams_roles(
    assigned, user, admin_user, run_code_flow, exchange_code
):
    group_services.add_members(group=Group.objects.get(name="team"), users=[user], actor=admin_user)
    flow = run_code_flow(assigned)
    code_hash = hash_code(flow.code)
    issued = exchange_code(assigned, flow).json()

    for name, row in rows(issued, code_hash).items():
        answer = carried(row)
        assert answer.client_id == assigned.pk, name
        assert answer.may_use is True, name
        if name.startswith("introspected"):
            assert answer.roles is None, name  # introspection does not ask for roles
        else:
            assert answer.roles == ("editor",), name


def test_a_person_out_of_the_groups_may_not_and_has_no_roles(
    assigned, user, admin_user, issue_tokens
):
    team = Group.objects.get(name="team")
    group_services.add_members(group=team, users=[user], actor=admin_user)
    issued = issue_tokens(assigned)
    user.groups.remove(team)  # a plain write: no revocation, the check alone decides

    for name, row in rows(issued).items():
        answer = carried(row)
        assert answer.may_use is False, name
        assert answer.roles in (None, ()), name


def test_an_open_app_is_usable_without_asking_the_assignments(web_client, user, issue_tokens):
    issued = issue_tokens(web_client)
    for name, row in rows(issued).items():
        assert carried(row).may_use is True, name


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner")
def test_the_access_tables_are_read_by_index_in_the_generic_plans(
    assigned, user, admin_user, issue_tokens
):
    """Every read of an access table in the lookups' generic plans is an index probe (by the
    app, the role, the person or the group), never a scan of a whole table; a group of one
    person's rows may be hashed, a table never."""
    group_services.add_members(group=Group.objects.get(name="team"), users=[user], actor=admin_user)
    issued = issue_tokens(assigned)
    # The tables hold a handful of rows here, and what the planner believes of them depends on
    # when autovacuum last analysed them (after other tests' rolled-back rows): on a tiny table a
    # scan may be cheapest. With scans priced out, a scan left in the plan means no index can
    # serve the read, which is what this test is about.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    access, refresh = (
        token_checksum(issued["access_token"]),
        token_checksum(issued["refresh_token"]),
    )
    for lookup, value in (
        (token_policy._ACCESS_TOKEN, access),
        (token_policy._REFRESH_TOKEN, refresh),
        (token_policy._GRANT, "0" * 64),
        (tokens._INTROSPECT_ACCESS_TOKEN, access),
        (tokens._INTROSPECT_REFRESH_TOKEN, refresh),
    ):
        plan = plans.generic_plan(lookup, value)
        reads = [node for node in plans.nodes(plan) if node.get("Relation Name") in ACCESS_TABLES]
        assert {node["Relation Name"] for node in reads} >= {
            "oauth_clients_assignment",
            "accounts_user_groups",
            "accounts_groupclosure",
        }
        for node in reads:
            assert "Index" in node["Node Type"] or "Bitmap" in node["Node Type"], node
