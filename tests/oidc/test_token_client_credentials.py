"""Client credentials grant for machine clients (RFC 6749 §4.4) and grant types per client."""

from __future__ import annotations

from http import HTTPStatus
from unittest import mock

import pytest
from django.urls import reverse

from oauth_clients.models import AccessToken, Client, RefreshToken
from tests.oidc.conftest import basic_auth, make_client, post_form


@pytest.fixture
def client_credentials(client, token_endpoint):
    def do(oauth_client: Client, **extra: str):
        return post_form(
            client,
            token_endpoint,
            {"grant_type": "client_credentials", **extra},
            HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
        )

    return do


@pytest.mark.spec("RFC 6749", "4.4.3")
def test_machine_client_gets_an_access_token_and_nothing_else(machine_client, client_credentials):
    response = client_credentials(machine_client)
    assert response.status_code == HTTPStatus.OK, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["access_token"]
    # RFC 6749 §4.4.3: "A refresh token SHOULD NOT be included"; no person, so no ID token.
    assert "refresh_token" not in body
    assert "id_token" not in body
    token = AccessToken.objects.get()
    assert token.user is None
    assert token.application == machine_client
    assert token.token == ""
    assert not RefreshToken.objects.exists()


@pytest.mark.spec("RFC 6749", "4.4.2")
def test_machine_client_cannot_ask_for_user_scopes(machine_client, client_credentials):
    assert client_credentials(machine_client).status_code == HTTPStatus.OK
    for scope in ("openid", "profile", "email offline_access"):
        response = client_credentials(machine_client, scope=scope)
        assert response.status_code == HTTPStatus.BAD_REQUEST
        assert response.json()["error"] == "invalid_scope"


@pytest.mark.spec("OIDC Core", "5.3.3")
def test_machine_token_at_userinfo_is_refused_not_a_crash(
    client, machine_client, client_credentials
):
    token = client_credentials(machine_client).json()["access_token"]
    response = client.get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


@pytest.mark.spec("OIDC Core", "5.3.3")
def test_machine_token_with_openid_scope_at_userinfo_is_refused(client, machine_client):
    """Even a row that claims `openid` (made outside the grant) has no person behind it."""
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, machine_client.test_secret),
    )
    AccessToken.objects.update(scope="openid profile")
    token = response.json()["access_token"]
    userinfo = client.get(
        reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert userinfo.status_code == HTTPStatus.FORBIDDEN


@pytest.mark.spec("RFC 6749", "5.2")
def test_code_flow_client_cannot_use_client_credentials(web_client, client_credentials):
    response = client_credentials(web_client)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "unauthorized_client"


@pytest.mark.spec("RFC 6749", "4.4")
def test_public_client_cannot_use_client_credentials(client, spa_client, token_endpoint):
    Client.objects.filter(pk=spa_client.pk).update(grant_types=["client-credentials"])
    response = post_form(
        client, token_endpoint, {"grant_type": "client_credentials", "client_id": "spa-app"}
    )
    assert response.status_code in {HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED}
    assert response.json()["error"] in {"unauthorized_client", "invalid_client"}


def test_one_client_may_hold_several_grant_types(web_client, issue_tokens, client_credentials):
    web_client.grant_types = ["authorization-code", "refresh_token", "client-credentials"]
    web_client.save(update_fields=["grant_types"])
    assert client_credentials(web_client).status_code == HTTPStatus.OK
    assert issue_tokens(web_client)["refresh_token"]


def test_machine_client_cannot_run_the_code_grant(client, machine_client, token_endpoint):
    response = post_form(
        client,
        token_endpoint,
        {"grant_type": "authorization_code", "code": "x" * 40, "redirect_uri": "https://a.b/c"},
        HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, machine_client.test_secret),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "unauthorized_client"


def test_machine_scope_must_be_allowed_for_the_client(db, client_credentials, settings):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "SCOPES": {**settings.OAUTH2_PROVIDER["SCOPES"], "reports:read": "Read reports"},
    }
    service = make_client(
        name="Reports",
        client_id="reports",
        secret="reports-secret-" + "q" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        allowed_scopes="reports:read",
    )
    granted = client_credentials(service, scope="reports:read")
    assert granted.status_code == HTTPStatus.OK, granted.content
    assert granted.json()["scope"] == "reports:read"
    other = make_client(
        name="Other",
        client_id="other-service",
        secret="other-secret-" + "q" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        allowed_scopes="",
    )
    assert client_credentials(other, scope="reports:read").json()["error"] == "invalid_scope"


@pytest.mark.django_db(transaction=True)
def test_client_credentials_query_count_and_no_password_hashing(
    client, django_assert_max_num_queries
):
    """The token endpoint's hot path: a handful of queries, no password KDF."""
    machine = make_client(
        name="Batch",
        client_id="batch",
        secret="batch-secret-" + "b" * 30,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        redirect_uris="",
        allowed_scopes="",
    )
    data = {"grant_type": "client_credentials"}
    auth = basic_auth(machine.client_id, machine.test_secret)
    url = reverse("oauth2_provider:token")
    refuse = AssertionError("password hasher on the token path")
    with (
        mock.patch("django.contrib.auth.hashers.check_password", side_effect=refuse),
        mock.patch("django.contrib.auth.hashers.make_password", side_effect=refuse),
        mock.patch("oauth2_provider.oauth2_validators.check_password", side_effect=refuse),
        mock.patch("oauth2_provider.models.make_password", side_effect=refuse),
    ):
        # The first request also stamps last_used_at (at most once a minute).
        with django_assert_max_num_queries(3) as first:
            assert post_form(client, url, data, HTTP_AUTHORIZATION=auth).status_code == 200
        with django_assert_max_num_queries(2) as steady:
            assert post_form(client, url, data, HTTP_AUTHORIZATION=auth).status_code == 200
    # One SELECT (the client; none with the shared client cache) and one INSERT, in autocommit:
    # no BEGIN/COMMIT round trips around the single write.
    data_writes = [
        q for q in steady.captured_queries if q["sql"].split()[0] in {"INSERT", "UPDATE", "DELETE"}
    ]
    assert len(data_writes) == 1  # the access token row
    print(f"client credentials: {len(first)} queries first, {len(steady)} steady")
