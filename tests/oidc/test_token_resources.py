"""RFC 8707 resource indicators at the token endpoint, on every grant (token_policy's
`_resolve_resources`): absolute URIs only, never beyond the grant."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlencode

import pytest

from oauth_clients.models import AccessToken, RefreshToken
from oauth_clients.oidc.tokens import token_checksum
from tests.oidc.conftest import FORM, MACHINE_SECRET, WEB_SECRET, basic_auth, post_form

API = "https://api.example.com"
OTHER = "https://other.example.com"


def machine_grant(client, token_endpoint, *resources: str):
    body = urlencode([("grant_type", "client_credentials"), *(("resource", r) for r in resources)])
    return client.post(
        token_endpoint,
        body,
        content_type=FORM,
        HTTP_AUTHORIZATION=basic_auth("batch-service", MACHINE_SECRET),
    )


@pytest.mark.spec("RFC 8707", "2")
def test_a_machine_token_carries_the_resource_it_names(client, token_endpoint, machine_client):
    assert machine_grant(client, token_endpoint).status_code == HTTPStatus.OK
    assert AccessToken.objects.get().resource == []
    response = machine_grant(client, token_endpoint, API)
    assert response.status_code == HTTPStatus.OK
    stored = AccessToken.objects.get(token_checksum=token_checksum(response.json()["access_token"]))
    assert stored.resource == [API]


@pytest.mark.spec("RFC 8707", "2")
@pytest.mark.parametrize("resource", ["not a uri", "/relative", f"{API}/#fragment", "urn:x:y"])
def test_a_resource_that_is_no_absolute_uri_is_invalid_target(
    client, token_endpoint, machine_client, resource
):
    assert machine_grant(client, token_endpoint, API).status_code == HTTPStatus.OK
    response = machine_grant(client, token_endpoint, resource)
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_target"


@pytest.mark.spec("RFC 8707", "2.2")
def test_a_refresh_keeps_the_granted_resources_and_cannot_widen_them(
    client, token_endpoint, web_client, run_code_flow, exchange_code
):
    def refresh(oauth_client, refresh_token: str, **extra: str):
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        auth = basic_auth(oauth_client.client_id, WEB_SECRET)
        return post_form(client, token_endpoint, data, HTTP_AUTHORIZATION=auth)

    flow = run_code_flow(web_client, extra={"resource": API})
    first = exchange_code(web_client, flow).json()
    inherited = refresh(web_client, first["refresh_token"])
    assert inherited.status_code == HTTPStatus.OK
    token = inherited.json()
    assert AccessToken.objects.get(
        token_checksum=token_checksum(token["access_token"])
    ).resource == [API]
    narrowed = refresh(web_client, token["refresh_token"], resource=API)
    assert narrowed.status_code == HTTPStatus.OK
    widened = refresh(web_client, narrowed.json()["refresh_token"], resource=OTHER)
    assert widened.status_code == HTTPStatus.BAD_REQUEST
    assert widened.json()["error"] == "invalid_target"
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1  # nothing rotated
