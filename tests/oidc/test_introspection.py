"""Token introspection (RFC 7662): client authentication, per-client visibility, resource
servers, and `{"active": false}` for everything a caller may not see."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus

import pytest
import time_machine
from django.urls import reverse

from oauth_clients.models import Client
from tests.oidc.conftest import basic_auth, make_client, post_form


@pytest.fixture
def introspect(client):
    def do(caller: Client | None, token: str, **extra: str):
        headers = {}
        if caller is not None:
            headers["HTTP_AUTHORIZATION"] = basic_auth(caller.client_id, caller.test_secret)
        return post_form(
            client, reverse("oauth2_provider:introspect"), {"token": token, **extra}, **headers
        )

    return do


@pytest.fixture
def resource_server(db) -> Client:
    return make_client(
        name="Orders API",
        client_id="orders-api",
        secret="orders-api-secret-" + "r" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        is_resource_server=True,
    )


@pytest.mark.spec("RFC 7662", "2.2")
def test_client_introspects_its_own_access_token(user, web_client, issue_tokens, introspect):
    tokens = issue_tokens(web_client, scope="openid profile")
    response = introspect(web_client, tokens["access_token"])
    assert response.status_code == HTTPStatus.OK, response.content
    data = response.json()
    assert data["active"] is True
    assert data["client_id"] == "web-app"
    assert set(data["scope"].split()) == {"openid", "profile"}
    assert data["sub"] == str(user.pk)
    assert data["username"] == "alice"
    assert data["token_type"] == "Bearer"
    assert data["exp"] > data["iat"]
    assert "no-store" in response["Cache-Control"]


@pytest.mark.spec("RFC 7662", "2.2")
def test_client_introspects_its_own_refresh_token(web_client, issue_tokens, introspect):
    tokens = issue_tokens(web_client)
    data = introspect(web_client, tokens["refresh_token"], token_type_hint="refresh_token").json()
    assert data["active"] is True
    assert data["token_type"] == "refresh_token"
    # Without the hint the server still finds it (RFC 7662 §2.1).
    assert introspect(web_client, tokens["refresh_token"]).json()["active"] is True


@pytest.mark.spec("RFC 7662", "2.1")
def test_introspection_requires_client_authentication(web_client, issue_tokens, introspect):
    token = issue_tokens(web_client)["access_token"]
    response = introspect(None, token)
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"
    web_client.test_secret = "wrong"
    assert introspect(web_client, token).status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.spec("RFC 7662", "2.1")
def test_public_client_cannot_introspect(client, spa_client, issue_tokens):
    token = issue_tokens(spa_client)["access_token"]
    response = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {"token": token, "client_id": spa_client.client_id},
    )
    assert response.status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.spec("RFC 7662", "4")
def test_other_clients_token_is_inactive_for_a_plain_client(
    web_client, machine_client, issue_tokens, introspect
):
    token = issue_tokens(web_client)["access_token"]
    assert introspect(web_client, token).json()["active"] is True
    assert introspect(machine_client, token).json() == {"active": False}


@pytest.mark.spec("RFC 7662", "4")
def test_resource_server_may_introspect_any_token(
    web_client, resource_server, issue_tokens, introspect
):
    token = issue_tokens(web_client)["access_token"]
    data = introspect(resource_server, token).json()
    assert data["active"] is True
    assert data["client_id"] == "web-app"


@pytest.mark.spec("RFC 7662", "2.2")
def test_unknown_expired_and_revoked_tokens_are_inactive(
    client, web_client, issue_tokens, introspect
):
    assert introspect(web_client, "no-such-token").json() == {"active": False}
    tokens = issue_tokens(web_client)
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=601)):
        assert introspect(web_client, tokens["access_token"]).json() == {"active": False}
    post_form(
        client,
        reverse("oauth2_provider:revoke-token"),
        {"token": tokens["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert introspect(web_client, tokens["access_token"]).json() == {"active": False}
    assert introspect(web_client, tokens["refresh_token"]).json() == {"active": False}


def test_deactivated_user_and_client_make_tokens_inactive(
    user, web_client, resource_server, issue_tokens, introspect
):
    token = issue_tokens(web_client)["access_token"]
    assert introspect(resource_server, token).json()["active"] is True
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert introspect(resource_server, token).json() == {"active": False}
    user.is_active = True
    user.save(update_fields=["is_active"])
    Client.objects.filter(pk=web_client.pk).update(is_active=False)
    assert introspect(resource_server, token).json() == {"active": False}


def test_machine_token_introspection_has_no_subject(machine_client, client, introspect):
    token = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, machine_client.test_secret),
    ).json()["access_token"]
    data = introspect(machine_client, token).json()
    assert data["active"] is True
    assert "sub" not in data
    assert "username" not in data


@pytest.mark.spec("RFC 7662", "2.1")
def test_missing_token_parameter_is_invalid_request(web_client, client):
    response = post_form(
        client,
        reverse("oauth2_provider:introspect"),
        {},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 7662", "2.1")
def test_get_is_refused_with_an_oauth_error(web_client, client):
    response = client.get(
        reverse("oauth2_provider:introspect"),
        {"token": "x"},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 7662", "2.1")
def test_client_secret_post_authenticates_too_but_never_with_basic_at_once(
    client, web_client, issue_tokens
):
    token = issue_tokens(web_client)["access_token"]
    url = reverse("oauth2_provider:introspect")
    body = {"token": token, "client_id": web_client.client_id}
    answer = post_form(client, url, {**body, "client_secret": web_client.test_secret})
    assert answer.json()["active"] is True
    assert post_form(client, url, {**body, "client_secret": "wrong"}).status_code == 401
    # RFC 6749 §2.3: one method per request; a body naming another client is confused too.
    basic = basic_auth(web_client.client_id, web_client.test_secret)
    both = {**body, "client_secret": web_client.test_secret}
    assert post_form(client, url, both, HTTP_AUTHORIZATION=basic).status_code == 401
    other = {"token": token, "client_id": "batch-service"}
    assert post_form(client, url, other, HTTP_AUTHORIZATION=basic).status_code == 401


@pytest.mark.spec("RFC 7662", "2.1")
def test_bad_credentials_are_answered_before_a_missing_token(client, web_client):
    url = reverse("oauth2_provider:introspect")
    for auth in (basic_auth(web_client.client_id, "wrong"), "Basic !!!", "Bearer x"):
        no_token = {"token_type_hint": "access_token"}
        response = post_form(client, url, no_token, HTTP_AUTHORIZATION=auth)
        assert response.status_code == HTTPStatus.UNAUTHORIZED, auth
        assert response["WWW-Authenticate"] == 'Basic realm="introspection"'
    for client_id in ("no-such-client", "x" * 300, "a\x00b"):
        auth = basic_auth(client_id, "secret")
        assert post_form(client, url, {"token": "t"}, HTTP_AUTHORIZATION=auth).status_code == 401


def test_the_caller_is_read_fresh_even_when_the_client_cache_holds_it(
    settings, web_client, resource_server, issue_tokens, introspect
):
    """The caller comes with the token from the database, so a change made behind the client
    services' back (no cache invalidation) counts at the next request."""
    from django.core.cache import cache

    from oauth_clients import client_cache

    settings.IDP_CLIENT_CACHE_SECONDS = 300
    cache.clear()
    token = issue_tokens(web_client)["access_token"]
    assert introspect(resource_server, token).json()["active"] is True
    assert client_cache.get_client(resource_server.client_id).is_active  # cached
    Client.objects.filter(pk=resource_server.pk).update(is_active=False)
    assert introspect(resource_server, token).status_code == HTTPStatus.UNAUTHORIZED
    Client.objects.filter(pk=resource_server.pk).update(is_active=True)
    assert introspect(resource_server, token).json()["active"] is True
    cache.clear()


def test_a_rotated_caller_secret_counts_at_once_and_its_grace_is_honoured(
    web_client, resource_server, issue_tokens, introspect, admin_user
):
    from oauth_clients import services

    token = issue_tokens(web_client)["access_token"]
    old = resource_server.test_secret
    new = services.rotate_client_secret(client=resource_server, actor=admin_user, grace_seconds=60)
    assert introspect(resource_server, token).json()["active"] is True  # old, within grace
    resource_server.test_secret = new
    assert introspect(resource_server, token).json()["active"] is True
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=61)):
        resource_server.test_secret = old
        assert introspect(resource_server, token).status_code == HTTPStatus.UNAUTHORIZED
    newest = services.rotate_client_secret(client=resource_server, actor=admin_user)
    resource_server.test_secret = new
    assert introspect(resource_server, token).status_code == HTTPStatus.UNAUTHORIZED
    resource_server.test_secret = newest
    assert introspect(resource_server, token).json()["active"] is True
