"""Who may use an app, enforced by the OIDC engine: at the authorization endpoint (the no-access
page, prompt=none), at every grant (code exchange, refresh) and at every use of a token
(userinfo, introspection). The rules are `oauth_clients.access`; here, the protocol around them.

Access is taken away with plain ORM writes (an assignment or a membership row deleted), not the
services, so what is proven is the engine's own re-check, not the revocation the services run
after commit.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent, GroupProfile
from accounts.services import rebuild_group_closure
from oauth_clients import services
from oauth_clients.models import Assignment, Client, Consent, Grant
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    PageParser,
    authorization_params,
    issuer,
    redirect_query,
)
from tests.oidc.conftest import WEB_SECRET, basic_auth, make_client, post_form

WIKI_REDIRECT_URI = "https://wiki.example.com/callback"
OWNER = "wiki-team@example.com"


def payload(id_token: str) -> dict[str, Any]:
    """An ID token's claims (its signature is proven in test_id_token.py)."""
    body = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def staff(db) -> Group:
    """staff ⊃ engineering ⊃ platform."""
    staff = Group.objects.create(name="staff")
    engineering = Group.objects.create(name="engineering")
    platform = Group.objects.create(name="platform")
    GroupProfile.objects.create(group=engineering, parent=staff)
    GroupProfile.objects.create(group=platform, parent=engineering)
    rebuild_group_closure()  # nesting written without the group services
    return staff


@pytest.fixture
def wiki(db, admin_user, staff) -> Client:
    """A trusted web app (no consent screen) assigned to the staff group only."""
    wiki = make_client(
        name="Wiki",
        client_id="wiki",
        secret=WEB_SECRET,
        redirect_uris=WIKI_REDIRECT_URI,
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email groups offline_access",
        is_trusted=True,
        owner_contact=OWNER,
    )
    services.assign(client=wiki, group=staff, actor=admin_user)
    services.set_access_policy(client=wiki, policy="assigned", actor=admin_user)
    return wiki


@pytest.fixture
def member(user, staff):
    user.groups.add(staff)
    return user


@pytest.fixture
def outsider(db, password_hash):
    return get_user_model().objects.create_user("mallory", "mallory@example.com", None)


@pytest.fixture
def introspect(client):
    def do(caller: Client, token: str) -> dict[str, Any]:
        auth = basic_auth(caller.client_id, caller.test_secret)
        response = post_form(
            client, reverse("oauth2_provider:introspect"), {"token": token}, HTTP_AUTHORIZATION=auth
        )
        assert response.status_code == HTTPStatus.OK, response.content
        return response.json()

    return do


@pytest.fixture
def refresh(client, token_endpoint):
    def do(oauth_client: Client, refresh_token: str):
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        auth = basic_auth(oauth_client.client_id, oauth_client.test_secret)
        return post_form(client, token_endpoint, data, HTTP_AUTHORIZATION=auth)

    return do


def signed_in(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


# --- The authorization endpoint


def test_a_member_gets_a_code_and_an_outsider_the_no_access_page(wiki, member, outsider):
    params = authorization_params(wiki)
    assert redirect_query(signed_in(member).get(AUTHORIZE_URL, params), WIKI_REDIRECT_URI)["code"]
    assert Grant.objects.filter(user=member).count() == 1

    response = signed_in(outsider).get(AUTHORIZE_URL, authorization_params(wiki))

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not response.has_header("Location")
    body = response.content.decode()
    assert "You don't have access to Wiki" in body
    assert 'class="site-header"' in body  # the house layout (templates/base.html)
    assert f'href="mailto:{OWNER}"' in body
    assert not Grant.objects.filter(user=outsider).exists()
    assert not Consent.objects.filter(user=outsider).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.ACCESS_DENIED)
    assert (event.subject, event.client) == (outsider, wiki)
    assert event.extra == {"silent": False}


def test_the_no_access_page_names_support_when_the_app_has_no_owner(
    wiki, outsider, settings, admin_user
):
    services.update_client(client=wiki, actor=admin_user, changes={"owner_contact": ""})
    settings.IDP_SUPPORT_URL = "https://help.example.com/"
    body = signed_in(outsider).get(AUTHORIZE_URL, authorization_params(wiki)).content.decode()
    assert 'href="https://help.example.com/"' in body
    assert "mailto:" not in body


@pytest.mark.spec("RFC 6749", "4.1.2.1")
def test_back_to_the_app_sends_access_denied_with_state_and_iss(wiki, outsider):
    http = signed_in(outsider)
    params = authorization_params(wiki)
    page = PageParser(http.get(AUTHORIZE_URL, params).content.decode())
    form, inside = page.form_with("button", name="back")
    assert form["method"] == "post"
    token = next(a["value"] for tag, a in inside if a.get("name") == "csrfmiddlewaretoken")

    response = http.post(form["action"], {"back": "back", "csrfmiddlewaretoken": token})

    error = redirect_query(response, WIKI_REDIRECT_URI)
    assert error["error"] == "access_denied"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert "code" not in error
    assert not Grant.objects.exists()
    assert not Consent.objects.exists()


def test_back_to_the_app_needs_the_pages_csrf_token(wiki, outsider):
    http = HttpClient(enforce_csrf_checks=True)
    http.force_login(outsider)
    params = authorization_params(wiki)
    response = http.post(f"{AUTHORIZE_URL}?{_query(params)}", {"back": "back"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not response.has_header("Location")


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_the_outsider_is_not_sent_to_a_second_factor_first(wiki, outsider, admin_user):
    services.update_client(client=wiki, actor=admin_user, changes={"requires_mfa": True})
    response = signed_in(outsider).get(AUTHORIZE_URL, authorization_params(wiki))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "You don't have access to Wiki" in response.content.decode()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_without_access_answers_access_denied(wiki, member, outsider):
    params = authorization_params(wiki, prompt="none")
    assert redirect_query(signed_in(member).get(AUTHORIZE_URL, params), WIKI_REDIRECT_URI)["code"]

    params = authorization_params(wiki, prompt="none")
    error = redirect_query(signed_in(outsider).get(AUTHORIZE_URL, params), WIKI_REDIRECT_URI)

    assert error["error"] == "access_denied"
    assert error["state"] == params["state"]
    assert error["iss"] == issuer()
    assert not Grant.objects.filter(user=outsider).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.ACCESS_DENIED)
    assert event.subject == outsider
    assert event.extra == {"silent": True}


def test_a_member_of_a_nested_subgroup_may_sign_in(wiki, outsider):
    outsider.groups.add(Group.objects.get(name="platform"))  # platform ⊂ engineering ⊂ staff
    params = authorization_params(wiki)
    assert redirect_query(signed_in(outsider).get(AUTHORIZE_URL, params), WIKI_REDIRECT_URI)["code"]


def test_a_group_deleted_while_assigned_lets_nobody_in(wiki, member, staff):
    params = authorization_params(wiki)
    assert redirect_query(signed_in(member).get(AUTHORIZE_URL, params), WIKI_REDIRECT_URI)["code"]
    GroupProfile.objects.filter(parent=staff).delete()
    staff.delete()
    assert not Assignment.objects.filter(client=wiki).exists()
    response = signed_in(member).get(AUTHORIZE_URL, authorization_params(wiki))
    assert response.status_code == HTTPStatus.FORBIDDEN


def test_an_open_app_lets_everyone_in(web_client, outsider):
    params = authorization_params(web_client)
    response = signed_in(outsider).get(AUTHORIZE_URL, params)
    assert redirect_query(response, web_client.redirect_uris)["code"]


# --- Every grant re-checks


@pytest.mark.spec("RFC 6749", "5.2")
def test_a_code_exchanged_after_unassignment_is_invalid_grant(
    wiki, member, run_code_flow, exchange_code
):
    assert exchange_code(wiki, run_code_flow(wiki)).status_code == HTTPStatus.OK
    flow = run_code_flow(wiki)
    Assignment.objects.filter(client=wiki).delete()

    response = exchange_code(wiki, flow)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


def test_a_deactivated_member_cannot_exchange_a_code(wiki, member, run_code_flow, exchange_code):
    flow = run_code_flow(wiki)
    type(member).objects.filter(pk=member.pk).update(is_active=False)
    response = exchange_code(wiki, flow)
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("RFC 6749", "6")
def test_a_refresh_after_leaving_the_group_is_invalid_grant(
    wiki, member, staff, issue_tokens, refresh
):
    tokens = issue_tokens(wiki)
    renewed = refresh(wiki, tokens["refresh_token"])
    assert renewed.status_code == HTTPStatus.OK
    member.groups.remove(staff)

    response = refresh(wiki, renewed.json()["refresh_token"])

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


def test_a_machine_token_is_unaffected_by_assignments(client, machine_client, admin_user):
    services.set_access_policy(client=machine_client, policy="assigned", actor=admin_user)
    auth = basic_auth(machine_client.client_id, machine_client.test_secret)
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == HTTPStatus.OK, response.content


# --- Every use of a token re-checks


@pytest.mark.spec("RFC 6750", "3.1")
def test_userinfo_and_introspection_after_leaving_the_group(
    client, wiki, member, staff, issue_tokens, introspect
):
    token = issue_tokens(wiki)["access_token"]
    userinfo = reverse("oauth2_provider:user-info")
    assert client.get(userinfo, **bearer(token)).status_code == HTTPStatus.OK
    assert introspect(wiki, token)["active"] is True
    member.groups.remove(staff)

    response = client.get(userinfo, **bearer(token))

    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert introspect(wiki, token) == {"active": False}


def test_introspection_of_a_refresh_token_after_unassignment(
    wiki, member, issue_tokens, introspect
):
    token = issue_tokens(wiki)["refresh_token"]
    assert introspect(wiki, token)["active"] is True
    Assignment.objects.filter(client=wiki).delete()
    assert introspect(wiki, token) == {"active": False}


# --- Claims: roles, groups and mapped claims in the ID token and userinfo


@pytest.fixture
def wiki_claims(wiki, admin_user, staff):
    """editor for staff, admin for platform only; groups named wiki-* sent; employee number."""
    editor = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=editor, group=staff, actor=admin_user)
    admin = services.define_role(client=wiki, name="admin", actor=admin_user)
    services.grant_role(role=admin, group=Group.objects.get(name="platform"), actor=admin_user)
    wiki_editors = Group.objects.create(name="wiki-editors")
    GroupProfile.objects.create(group=wiki_editors, parent=staff)
    rebuild_group_closure(groups=[wiki_editors])
    services.set_claim_mapping(
        client=wiki,
        actor=admin_user,
        roles_claim="wiki_roles",
        groups_filter="prefix",
        groups_prefix="wiki-",
        claim_attributes={"login": "username"},
    )
    return wiki


def test_roles_groups_and_mapped_claims_in_the_id_token_and_userinfo(
    client, wiki_claims, user, issue_tokens
):
    user.groups.add(Group.objects.get(name="wiki-editors"))  # ⊂ staff: a member, an editor
    tokens = issue_tokens(wiki_claims, scope="openid profile groups")
    claims = payload(tokens["id_token"])
    info = client.get(reverse("oauth2_provider:user-info"), **bearer(tokens["access_token"]))

    for answer in (claims, info.json()):
        assert answer["wiki_roles"] == ["editor"]
        assert answer["groups"] == ["wiki-editors"]  # not staff: the app asked for wiki-*
        assert answer["login"] == "alice"
        assert "roles" not in answer


def test_the_groups_claim_carries_the_groups_above_and_only_with_the_scope(
    client, wiki, admin_user, user, issue_tokens
):
    user.groups.add(Group.objects.get(name="platform"))
    tokens = issue_tokens(wiki, scope="openid groups")
    assert payload(tokens["id_token"])["groups"] == ["engineering", "platform", "staff"]
    assert "groups" not in payload(issue_tokens(wiki, scope="openid")["id_token"])


def test_an_app_without_roles_gets_no_roles_claim_and_one_with_roles_an_empty_one(
    wiki, member, admin_user, issue_tokens
):
    assert "roles" not in payload(issue_tokens(wiki)["id_token"])
    services.define_role(client=wiki, name="viewer", actor=admin_user)
    assert payload(issue_tokens(wiki)["id_token"])["roles"] == []


def test_a_refreshed_id_token_carries_the_roles_granted_since(
    wiki, member, admin_user, staff, issue_tokens, refresh
):
    tokens = issue_tokens(wiki)
    role = services.define_role(client=wiki, name="editor", actor=admin_user)
    services.grant_role(role=role, group=staff, actor=admin_user)
    renewed = refresh(wiki, tokens["refresh_token"]).json()
    assert payload(renewed["id_token"])["roles"] == ["editor"]


# --- What it costs: what an app open to everyone costs (its budgets are pinned in
# test_query_counts.py, test_userinfo.py and test_token_refresh.py). The access check and the
# roles are answered in the statement that reads the token or the code
# (oauth_clients/oidc/app_access.py `annotate_app_access`); a rise here is a regression.


def test_userinfo_of_an_assigned_app_with_roles_costs_one_query(
    client, wiki_claims, member, issue_tokens, django_assert_num_queries
):
    token = issue_tokens(wiki_claims, scope="openid profile")["access_token"]
    url = reverse("oauth2_provider:user-info")
    # The token with its user and its app, whether the app defines roles, whether the person
    # may use it and their roles.
    with django_assert_num_queries(1):
        response = client.get(url, **bearer(token))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["wiki_roles"] == ["editor"]


def test_userinfo_of_an_assigned_app_with_the_groups_scope_costs_two_queries(
    client, wiki_claims, member, issue_tokens, django_assert_num_queries
):
    token = issue_tokens(wiki_claims, scope="openid profile groups")["access_token"]
    url = reverse("oauth2_provider:user-info")
    # The token (as above); the person's groups for the `groups` claim, as for an open app.
    with django_assert_num_queries(2):
        response = client.get(url, **bearer(token))
    assert response.status_code == HTTPStatus.OK
    assert response.json()["wiki_roles"] == ["editor"]
    assert response.json()["groups"] == []  # staff is not wiki-*


def test_an_open_app_with_roles_costs_userinfo_one_query(
    client, web_client, user, admin_user, issue_tokens, django_assert_num_queries
):
    services.define_role(client=web_client, name="viewer", actor=admin_user)
    token = issue_tokens(web_client, scope="openid profile")["access_token"]
    with django_assert_num_queries(1):  # the token, with the roles
        response = client.get(reverse("oauth2_provider:user-info"), **bearer(token))
    assert response.json()["roles"] == []


def test_introspection_of_an_assigned_app_costs_what_an_open_apps_does(
    wiki, member, issue_tokens, introspect, django_assert_max_num_queries
):
    token = issue_tokens(wiki)["access_token"]
    introspect(wiki, token)  # stamps last_used_at
    with django_assert_max_num_queries(2):  # caller; the token with the access check
        assert introspect(wiki, token)["active"] is True
    refresh_token = issue_tokens(wiki)["refresh_token"]
    introspect(wiki, refresh_token)
    with django_assert_max_num_queries(3):  # caller; the access-token lookup misses; the token
        assert introspect(wiki, refresh_token)["active"] is True


def test_a_refresh_of_an_assigned_app_costs_what_an_open_apps_does(
    wiki_claims, member, issue_tokens, refresh, django_assert_max_num_queries
):
    from django.db import connection

    first = issue_tokens(wiki_claims)
    one_statement = connection.vendor == "postgresql"
    # test_token_refresh.py's budget for an open app (2 or 10).
    with django_assert_max_num_queries(2 if one_statement else 10):
        renewed = refresh(wiki_claims, first["refresh_token"])
    assert renewed.status_code == HTTPStatus.OK
    assert payload(renewed.json()["id_token"])["wiki_roles"] == ["editor"]


def test_a_code_exchange_of_an_assigned_app_costs_what_an_open_apps_does(
    wiki_claims, member, run_code_flow, exchange_code, django_assert_max_num_queries
):
    from django.db import connection

    exchange_code(wiki_claims, run_code_flow(wiki_claims))  # last_used_at stamped
    flow = run_code_flow(wiki_claims)
    one_statement = connection.vendor == "postgresql"
    # test_query_counts.py's budget for an open app (2 or 9).
    with django_assert_max_num_queries(2 if one_statement else 9):
        response = exchange_code(wiki_claims, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    assert payload(response.json()["id_token"])["wiki_roles"] == ["editor"]


def test_userinfo_roles_gather_every_grant_sorted_and_once(
    client, wiki_claims, user, admin_user, issue_tokens
):
    """editor through staff (two levels up), admin through platform, viewer to the person,
    editor again to the person: one claim, each name once, sorted (the roles come in the
    token's own statement, joined by the database, `oauth_clients.access.roles_expression`)."""
    user.groups.add(Group.objects.get(name="platform"))
    viewer = services.define_role(client=wiki_claims, name="viewer", actor=admin_user)
    services.grant_role(role=viewer, user=user, actor=admin_user)
    editor = wiki_claims.roles.get(name="editor")
    services.grant_role(role=editor, user=user, actor=admin_user)
    token = issue_tokens(wiki_claims, scope="openid")["access_token"]

    info = client.get(reverse("oauth2_provider:user-info"), **bearer(token)).json()

    assert info["wiki_roles"] == ["admin", "editor", "viewer"]


def test_a_person_assigned_directly_may_use_the_app_at_every_step(
    client, wiki, outsider, admin_user, run_code_flow, exchange_code, refresh, introspect
):
    services.assign(client=wiki, user=outsider, actor=admin_user)
    tokens = exchange_code(wiki, run_code_flow(wiki, as_user=outsider)).json()
    userinfo = reverse("oauth2_provider:user-info")

    assert client.get(userinfo, **bearer(tokens["access_token"])).status_code == HTTPStatus.OK
    assert introspect(wiki, tokens["access_token"])["active"] is True
    renewed = refresh(wiki, tokens["refresh_token"])
    assert renewed.status_code == HTTPStatus.OK

    Assignment.objects.filter(client=wiki, user=outsider).delete()
    token = renewed.json()["access_token"]
    assert client.get(userinfo, **bearer(token)).status_code == HTTPStatus.UNAUTHORIZED
    assert introspect(wiki, token) == {"active": False}
    assert refresh(wiki, renewed.json()["refresh_token"]).json()["error"] == "invalid_grant"
