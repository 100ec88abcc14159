"""Provider metadata (OIDC Discovery 1.0 §3-4, RFC 8414 §2-3): one issuer everywhere, every
endpoint, only what is really supported, cacheable."""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients.keys import generate_rsa_private_key_pem
from oauth_clients.oidc import published
from oauth_clients.oidc.claims import supported_claims
from oauth_clients.oidc.views import discovery

OIDC = "/.well-known/openid-configuration"
RFC8414 = "/.well-known/oauth-authorization-server"


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    published.forget()
    yield
    cache.clear()
    published.forget()


@pytest.fixture
def metadata(client) -> dict:
    response = client.get(OIDC)
    assert response.status_code == HTTPStatus.OK
    return response.json()


@pytest.mark.spec("OIDC Discovery", "4")
def test_discovery_is_served_at_the_issuer(client, settings):
    response = client.get(OIDC)
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"] == "application/json"
    assert response.json()["issuer"] == settings.IDP_ISSUER
    assert response["Access-Control-Allow-Origin"] == "*"


@pytest.mark.spec("OIDC Discovery", "3")
def test_discovery_lists_every_endpoint_on_the_issuer(metadata, settings):
    issuer = settings.IDP_ISSUER
    assert metadata["authorization_endpoint"] == f"{issuer}/o/authorize/"
    assert metadata["token_endpoint"] == f"{issuer}/o/token/"
    assert metadata["userinfo_endpoint"] == f"{issuer}/o/userinfo/"
    assert metadata["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
    assert metadata["end_session_endpoint"] == f"{issuer}/o/logout/"
    assert metadata["revocation_endpoint"] == f"{issuer}/o/revoke_token/"
    assert metadata["introspection_endpoint"] == f"{issuer}/o/introspect/"


@pytest.mark.spec("OIDC Discovery", "3")
@pytest.mark.spec("RFC 9207", "3")
def test_discovery_advertises_only_what_is_supported(metadata, settings):
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["response_modes_supported"] == ["query"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    }
    assert metadata["authorization_response_iss_parameter_supported"] is True
    # RS256 by default; ES256 for the clients that take it (an EC key is configured).
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]
    assert metadata["subject_types_supported"] == ["public"]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",  # RFC 7523 §2.2 (tests/oidc/test_private_key_jwt.py)
        "none",
    ]
    assert "none" not in metadata["introspection_endpoint_auth_methods_supported"]
    assert metadata["request_parameter_supported"] is False
    # Request objects by reference: no. PAR's `request_uri` is RFC 9126's (tests/oidc/test_par.py).
    assert metadata["request_uri_parameter_supported"] is False
    assert metadata["pushed_authorization_request_endpoint"].endswith("/o/par/")
    assert metadata["require_pushed_authorization_requests"] is False
    assert metadata["claims_parameter_supported"] is False
    # What the authorization endpoint implements (tests/oidc/test_prompt.py); no select_account.
    assert metadata["prompt_values_supported"] == ["none", "login", "consent"]
    assert set(metadata["scopes_supported"]) == set(settings.OAUTH2_PROVIDER["SCOPES"])
    assert "openid" in metadata["scopes_supported"]
    assert metadata["claims_supported"] == supported_claims()
    for never in ("token", "id_token", "code id_token", "password", "implicit", "plain"):
        assert never not in str(
            metadata["response_types_supported"]
            + metadata["grant_types_supported"]
            + metadata["code_challenge_methods_supported"]
        ).split("'")


@pytest.mark.spec("OIDC Discovery", "3")
def test_discovery_publishes_the_acr_values_the_authorization_endpoint_honours(metadata):
    # tests/accounts/test_mfa.py shows each stepping a password session up to a second factor.
    assert metadata["acr_values_supported"] == [
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
        "phr",
    ]
    # OIDC Discovery 1.0 §3: the languages `ui_locales` chooses from (test_languages.py).
    assert metadata["ui_locales_supported"] == ["en", "de", "fr", "es", "ja"]
    # Every scope offered is one the consent screen can describe; none listed only internally.
    assert not {"address", "phone"} & set(metadata["scopes_supported"])


@pytest.mark.spec("RFC 8414", "3")
def test_rfc8414_metadata_has_the_same_issuer_and_endpoints(client, metadata):
    response = client.get(RFC8414)
    assert response.status_code == HTTPStatus.OK
    oauth = response.json()
    assert oauth["issuer"] == metadata["issuer"]
    for key in ("token_endpoint", "authorization_endpoint", "jwks_uri", "revocation_endpoint"):
        assert oauth[key] == metadata[key]


@pytest.mark.spec("OIDC Discovery", "4.3")
def test_issuer_is_identical_in_discovery_id_token_and_authorization_response(
    web_client, run_code_flow, exchange_code, metadata
):
    flow = run_code_flow(web_client)
    assert flow.params["iss"] == [metadata["issuer"]]  # RFC 9207 §2
    id_token = exchange_code(web_client, flow).json()["id_token"]
    payload = id_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["iss"] == metadata["issuer"]  # OIDC Discovery §4.3


def test_discovery_is_cacheable_and_cached(client):
    with mock.patch(
        "oauth_clients.oidc.views.discovery.provider_metadata", wraps=discovery.provider_metadata
    ) as build:
        first = client.get(OIDC)
        second = client.get(RFC8414)
    assert "max-age=3600" in first["Cache-Control"]
    assert "public" in first["Cache-Control"]
    assert second.content == first.content
    assert build.call_count == 1  # the second answer came from the process's encoded copy


def test_discovery_and_jwks_need_no_cache_round_trip(client):
    """Built once per process from settings: served even while the shared cache is down."""
    assert client.get(OIDC).status_code == HTTPStatus.OK
    assert client.get("/.well-known/jwks.json").status_code == HTTPStatus.OK
    outage = ConnectionError("cache down")
    with (
        mock.patch.object(cache, "get", side_effect=outage),
        mock.patch.object(cache, "set", side_effect=outage),
    ):
        metadata = client.get(OIDC)
        jwks = client.get("/.well-known/jwks.json")
    assert metadata.status_code == HTTPStatus.OK
    assert metadata["Content-Type"] == "application/json"
    assert metadata.json()["issuer"]
    assert jwks.status_code == HTTPStatus.OK
    assert jwks.json()["keys"]


def test_discovery_cache_follows_the_signing_keys(client, settings):
    with mock.patch(
        "oauth_clients.oidc.views.discovery.provider_metadata", wraps=discovery.provider_metadata
    ) as build:
        client.get(OIDC)
        settings.OAUTH2_PROVIDER = {
            **settings.OAUTH2_PROVIDER,
            "OIDC_RSA_PRIVATE_KEY": generate_rsa_private_key_pem(),
        }
        client.get(OIDC)
    assert build.call_count == 2


def test_discovery_cache_follows_the_issuer(client, settings):
    client.get(OIDC)
    settings.IDP_ISSUER = "https://login.example.com"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "login.example.com"]
    assert HttpClient().get(OIDC).json()["issuer"] == "https://login.example.com"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_discovery_answers_get_only(client, method):
    assert getattr(client, method)(OIDC).status_code == HTTPStatus.METHOD_NOT_ALLOWED


def test_dot_url_names_still_resolve_under_its_namespace():
    """DOT reverses its own names (issuer, metadata); they resolve to our mounted views."""
    expected = {
        "authorize": "/o/authorize/",
        "token": "/o/token/",
        "revoke-token": "/o/revoke_token/",
        "introspect": "/o/introspect/",
        "user-info": "/o/userinfo/",
        "rp-initiated-logout": "/o/logout/",
        "device-authorization": "/o/device-authorization/",
        "pushed-authorization-request": "/o/par/",
        "device": "/device",
        "jwks-info": "/.well-known/jwks.json",
        "oidc-connect-discovery-info": OIDC,
        "oauth-server-metadata": RFC8414,
    }
    for name, path in expected.items():
        assert reverse(f"oauth2_provider:{name}") == path


@pytest.mark.parametrize(
    "path",
    [
        "/o/applications/",
        "/o/applications/register/",
        "/o/authorized_tokens/",
        "/o/register/",
        "/o/device/",
        "/o/.well-known/openid-configuration",
    ],
)
def test_dot_pages_we_do_not_serve_are_not_mounted(admin_client, path):
    """Self-service app registration and DCR are not offered (clients are managed in the
    admin); DOT's device pages are replaced by ours (/device, tests/oidc/test_device_flow.py)."""
    assert admin_client.get(path).status_code == HTTPStatus.NOT_FOUND
