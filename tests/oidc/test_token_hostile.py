"""Hostile input at the back-channel endpoints (token, introspection, revocation, userinfo):
each gets the protocol's own error (RFC 6749 §5.2, RFC 6750 §3.1) and never a 500."""

from __future__ import annotations

import json
from http import HTTPStatus
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from oauth_clients.models import Client
from oauth_clients.oidc.validator import IdPOAuth2Validator
from tests.oidc.conftest import FORM, basic_auth, post_form

BACK_CHANNEL = ["token", "introspect", "revoke-token"]
ALL_ENDPOINTS = [*BACK_CHANNEL, "user-info"]
OAUTH_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_token",
}


def assert_oauth_error(response, *errors: str, status: int | None = None) -> dict:
    """An RFC 6749 §5.2 error: JSON with an `error` code, a 4xx status, never cached."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if status is not None:
        assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["error"] in (set(errors) or OAUTH_ERRORS), body
    return body


@pytest.fixture
def auth(machine_client) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": basic_auth(machine_client.client_id, machine_client.test_secret)}


@pytest.fixture
def cc_ok(client, auth):
    """The positive path every attack below is measured against."""
    response = post_form(
        client, reverse("oauth2_provider:token"), {"grant_type": "client_credentials"}, **auth
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


# --- the token endpoint


@pytest.mark.spec("RFC 6749", "3.2")
def test_get_at_the_token_endpoint(client, cc_ok, auth):
    response = client.get(
        reverse("oauth2_provider:token"), {"grant_type": "client_credentials"}, **auth
    )
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.METHOD_NOT_ALLOWED)
    assert response["Allow"] == "POST"


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_json_body_at_the_token_endpoint(client, cc_ok, auth):
    response = client.post(
        reverse("oauth2_provider:token"),
        json.dumps({"grant_type": "client_credentials"}),
        content_type="application/json",
        **auth,
    )
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.spec("RFC 6749", "4.1.3")
def test_multipart_body_at_the_token_endpoint(client, cc_ok, auth):
    response = client.post(
        reverse("oauth2_provider:token"), {"grant_type": "client_credentials"}, **auth
    )
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.spec("RFC 6749", "3.2")
def test_query_parameters_on_a_token_post(client, cc_ok, auth):
    response = client.post(
        reverse("oauth2_provider:token") + "?grant_type=client_credentials",
        urlencode({"grant_type": "client_credentials"}),
        content_type=FORM,
        **auth,
    )
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.spec("RFC 6749", "5.2")
@pytest.mark.parametrize(
    ("grant_type", "error"),
    [
        ("password", "unsupported_grant_type"),
        ("implicit", "unsupported_grant_type"),
        ("token", "unsupported_grant_type"),
        # Served for device apps (RFC 8628, tests/oidc/test_device_flow.py), not this client.
        ("urn:ietf:params:oauth:grant-type:device_code", "unauthorized_client"),
        ("urn:ietf:params:oauth:grant-type:jwt-bearer", "unsupported_grant_type"),
        ("made_up", "unsupported_grant_type"),
        ("", "unsupported_grant_type"),
    ],
)
def test_unsupported_grants(client, cc_ok, auth, grant_type, error):
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": grant_type, "username": "alice", "password": "pw", "scope": ""},
        **auth,
    )
    assert_oauth_error(response, error)


@pytest.mark.spec("RFC 9700", "2.4")
def test_password_grant_is_refused_even_when_a_client_is_registered_for_it(client, user, password):
    Client.objects.create(
        name="Legacy",
        client_id="legacy",
        client_secret="legacy-secret-" + "l" * 30,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_PASSWORD,
    )
    refuse = AssertionError("a user's password was checked at the token endpoint")
    with mock.patch("oauth2_provider.oauth2_validators.authenticate", side_effect=refuse):
        response = post_form(
            client,
            reverse("oauth2_provider:token"),
            {"grant_type": "password", "username": "alice", "password": password},
            HTTP_AUTHORIZATION=basic_auth("legacy", "legacy-secret-" + "l" * 30),
        )
    body = assert_oauth_error(response, "unsupported_grant_type")
    assert "access_token" not in body
    # Second lock: the validator itself never checks a password.
    assert IdPOAuth2Validator().validate_user("alice", password, None, None) is False


@pytest.mark.spec("RFC 6749", "5.2")
def test_wrong_client_secret_at_the_token_endpoint(client, cc_ok, machine_client):
    response = post_form(
        client,
        reverse("oauth2_provider:token"),
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, "wrong"),
    )
    assert_oauth_error(response, "invalid_client", status=HTTPStatus.UNAUTHORIZED)
    # RFC 6749 §5.2: a client that tried Basic is challenged with Basic.
    assert response["WWW-Authenticate"].startswith("Basic")


@pytest.mark.spec("RFC 6749", "5.2")
@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "authorization_code"},
        {"grant_type": "authorization_code", "code": "nope", "redirect_uri": "https://x.y/z"},
        {"grant_type": "refresh_token"},
        {"grant_type": "refresh_token", "refresh_token": "nope"},
        {"grant_type": "client_credentials", "scope": "openid"},
        {"grant_type": "client_credentials", "scope": "\u202e\ufffd"},
    ],
)
def test_incomplete_or_wrong_grants_at_the_token_endpoint(client, cc_ok, auth, data):
    assert_oauth_error(post_form(client, reverse("oauth2_provider:token"), data, **auth))


# --- every back-channel endpoint


@pytest.mark.spec("RFC 6749", "3.2")
@pytest.mark.parametrize("name", BACK_CHANNEL)
def test_duplicated_parameters(client, cc_ok, auth, name):
    body = "grant_type=client_credentials&grant_type=client_credentials&token=a&token=b"
    response = client.post(reverse(f"oauth2_provider:{name}"), body, content_type=FORM, **auth)
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_three_megabyte_body(client, cc_ok, auth, name):
    body = "grant_type=client_credentials&token=x&padding=" + "a" * (3 * 1024 * 1024)
    response = client.post(reverse(f"oauth2_provider:{name}"), body, content_type=FORM, **auth)
    assert_oauth_error(response, "invalid_request")
    assert response.status_code in {HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.BAD_REQUEST}


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_two_hundred_kilobyte_parameter(client, cc_ok, auth, name):
    data = {"grant_type": "client_credentials", "token": "t" * 200_000, "access_token": "t"}
    response = post_form(client, reverse(f"oauth2_provider:{name}"), data, **auth)
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_many_parameters(client, cc_ok, auth, name):
    body = "&".join(f"p{i}=x" for i in range(2000))
    response = client.post(reverse(f"oauth2_provider:{name}"), body, content_type=FORM, **auth)
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_nul_bytes(client, cc_ok, auth, name):
    body = "grant_type=client_credentials&token=ab%00cd&access_token=ab%00cd&client_id=x%00"
    response = client.post(reverse(f"oauth2_provider:{name}"), body, content_type=FORM, **auth)
    assert_oauth_error(response, "invalid_request", "invalid_token")


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_broken_utf8(client, cc_ok, machine_client, name):
    body = b"grant_type=client_credentials&token=%ff%fe&access_token=\xff\xfe&client_id=\xc3\x28"
    response = client.post(
        reverse(f"oauth2_provider:{name}"),
        body,
        content_type=FORM,
        HTTP_AUTHORIZATION=basic_auth(machine_client.client_id, "wrong"),
    )
    assert_oauth_error(response)


@pytest.mark.parametrize("name", BACK_CHANNEL)
def test_json_bodies(client, cc_ok, auth, name):
    response = client.post(
        reverse(f"oauth2_provider:{name}"),
        json.dumps({"token": "x", "grant_type": "client_credentials"}),
        content_type="application/json",
        **auth,
    )
    assert_oauth_error(response, "invalid_request", status=HTTPStatus.BAD_REQUEST)


@pytest.mark.parametrize("name", ALL_ENDPOINTS)
def test_garbage_authorization_headers(client, cc_ok, name):
    for header in ("Basic \x00\x01", "Basic " + "A" * 10_000, "Bearer \x00", "\udcff", "Digest x"):
        response = client.post(
            reverse(f"oauth2_provider:{name}"),
            "grant_type=client_credentials&token=x",
            content_type=FORM,
            HTTP_AUTHORIZATION=header,
        )
        assert_oauth_error(response)
