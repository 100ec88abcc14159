"""Token revocation (RFC 7009): only the caller's own tokens; a refresh token takes its grant's
access tokens with it; unknown or foreign tokens answer 200 and change nothing."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients.models import RefreshToken
from tests.oidc.conftest import basic_auth, post_form


@pytest.fixture
def userinfo_status(client):
    def status(token: str) -> int:
        return client.get(
            reverse("oauth2_provider:user-info"), HTTP_AUTHORIZATION=f"Bearer {token}"
        ).status_code

    return status


@pytest.mark.spec("RFC 7009", "2.1")
def test_client_revokes_its_access_token(user, web_client, issue_tokens, revoke, userinfo_status):
    tokens = issue_tokens(web_client)
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK
    response = revoke(web_client, tokens["access_token"], token_type_hint="access_token")
    assert response.status_code == HTTPStatus.OK
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED)
    assert (event.subject, event.client) == (user, web_client)
    assert event.extra["token_type"] == "access_token"


@pytest.mark.spec("RFC 7009", "2.1")
def test_revoking_a_refresh_token_revokes_its_access_tokens(
    client, web_client, issue_tokens, revoke, userinfo_status
):
    first = issue_tokens(web_client)
    rotated = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    ).json()
    assert userinfo_status(rotated["access_token"]) == HTTPStatus.OK

    assert revoke(web_client, rotated["refresh_token"]).status_code == HTTPStatus.OK

    assert userinfo_status(rotated["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()


@pytest.mark.spec("RFC 7009", "2.1")
def test_public_client_revokes_its_own_token(spa_client, issue_tokens, revoke, userinfo_status):
    tokens = issue_tokens(spa_client)
    assert revoke(spa_client, tokens["refresh_token"]).status_code == HTTPStatus.OK
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED


@pytest.mark.spec("RFC 7009", "2.1")
def test_another_clients_token_is_left_alone(
    web_client, machine_client, issue_tokens, revoke, userinfo_status
):
    tokens = issue_tokens(web_client)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert revoke(machine_client, token).status_code == HTTPStatus.OK
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REVOKED).exists()


@pytest.mark.spec("RFC 7009", "2.2")
def test_unknown_token_answers_200(web_client, revoke):
    assert revoke(web_client, "no-such-token").status_code == HTTPStatus.OK


@pytest.mark.spec("RFC 7009", "2.2.1")
def test_wrong_client_secret_is_invalid_client(web_client, issue_tokens, revoke, userinfo_status):
    tokens = issue_tokens(web_client)
    web_client.test_secret = "wrong"
    response = revoke(web_client, tokens["access_token"])
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"] == "invalid_client"
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK


@pytest.mark.spec("RFC 7009", "2.1")
def test_missing_token_is_invalid_request(web_client, client):
    response = post_form(
        client,
        reverse("oauth2_provider:revoke-token"),
        {},
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 7009", "2.1")
def test_get_is_refused_with_an_oauth_error(web_client, client):
    response = client.get(reverse("oauth2_provider:revoke-token"), {"token": "x"})
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["error"] == "invalid_request"
