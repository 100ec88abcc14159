"""CORS for single-page apps at the token, revocation and userinfo endpoints, and nowhere else.

A registered single-page app's origins (the https origins of its redirect URIs) get the
preflight and the answers; an unregistered origin, a look-alike, a server-side app's origin or a
disabled app's origin get no CORS header, so the browser keeps the answer from the page.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from oauth_clients import services
from oauth_clients.models import Client
from oauth_clients.selectors import spa_origin_registered
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params
from tests.oidc.conftest import CodeFlowResult, basic_auth, post_form

SPA_ORIGIN = "https://app.example.com"
WEB_ORIGIN = "https://portal.example.com"
CORS_ENDPOINTS = {"token": "POST", "revoke-token": "POST", "user-info": "GET"}
NOT_OURS = [
    "https://evil.example.com",
    "https://app.example.com.evil.example",  # the SPA's origin as a prefix
    "https://example.com",  # a substring of the SPA's origin
    "http://app.example.com",  # another scheme: another origin
    "https://app.example.com:8443",  # another port: another origin
    "null",  # sandboxed frames, file: pages
]


@pytest.fixture
def spa(admin_user) -> Client:
    """A single-page app registered as the admin would: its origins derived from its URIs."""
    client, _secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.SPA,
        name="Browser App",
        redirect_uris=[f"{SPA_ORIGIN}/callback"],
        scopes="openid profile",
        client_id="browser-app",
    )
    client.test_secret = ""
    return client


@pytest.fixture
def portal(admin_user) -> Client:
    """A confidential server-side web app: its origin calls nothing from the browser."""
    client, secret = services.register_client(
        actor=admin_user,
        kind=Client.Kind.WEB,
        name="Portal",
        redirect_uris=[f"{WEB_ORIGIN}/callback"],
        scopes="openid profile",
        client_id="portal",
    )
    client.test_secret = secret
    return client


@pytest.fixture
def spa_tokens(spa, run_code_flow) -> dict[str, Any]:
    response = redeem(HttpClient(), spa, run_code_flow(spa, scope="openid profile"), SPA_ORIGIN)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def redeem(http: HttpClient, oauth_client: Client, flow: CodeFlowResult, origin: str) -> Any:
    """The code exchange as sent from `origin` (Basic for a confidential client)."""
    data = flow.token_data()
    headers = {"HTTP_ORIGIN": origin}
    if oauth_client.client_type == Client.CLIENT_CONFIDENTIAL:
        headers["HTTP_AUTHORIZATION"] = basic_auth(oauth_client.client_id, oauth_client.test_secret)
    else:
        data["client_id"] = oauth_client.client_id
    return post_form(http, reverse("oauth2_provider:token"), data, **headers)


def preflight(http: HttpClient, name: str, origin: str) -> Any:
    return http.options(
        reverse(f"oauth2_provider:{name}"),
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=CORS_ENDPOINTS[name],
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization,content-type",
    )


def actual(http: HttpClient, name: str, origin: str, tokens: dict[str, Any], spa: Client) -> Any:
    """What the single-page app sends to each endpoint (a refresh, a revocation, userinfo)."""
    if name == "token":
        data = {
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": spa.client_id,
        }
        return post_form(http, reverse("oauth2_provider:token"), data, HTTP_ORIGIN=origin)
    if name == "revoke-token":
        data = {"token": tokens["access_token"], "client_id": spa.client_id}
        return post_form(http, reverse("oauth2_provider:revoke-token"), data, HTTP_ORIGIN=origin)
    return http.get(
        reverse("oauth2_provider:user-info"),
        HTTP_ORIGIN=origin,
        HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}",
    )


def assert_cors_for(response: Any, origin: str) -> None:
    assert response["Access-Control-Allow-Origin"] == origin
    assert "Origin" in response["Vary"]
    assert not response.has_header("Access-Control-Allow-Credentials")  # no cookies here


def assert_no_cors(response: Any) -> None:
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


# --- the single-page app's own origin


@pytest.mark.spec("RFC 6749", "4.1.3")
@pytest.mark.spec("RFC 7636", "4.5")
def test_spa_redeems_its_code_from_the_browser(client, spa, run_code_flow):
    answer = preflight(client, "token", SPA_ORIGIN)
    assert answer.status_code == HTTPStatus.NO_CONTENT
    assert_cors_for(answer, SPA_ORIGIN)
    assert answer["Access-Control-Allow-Methods"] == "POST"
    allowed = {h.strip().lower() for h in answer["Access-Control-Allow-Headers"].split(",")}
    # A DPoP proof (RFC 9449 §4.1) is a header of its own.
    assert allowed == {"authorization", "content-type", "dpop"}
    assert int(answer["Access-Control-Max-Age"]) > 0

    flow = run_code_flow(spa, scope="openid profile")
    response = redeem(client, spa, flow, SPA_ORIGIN)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["access_token"]
    assert_cors_for(response, SPA_ORIGIN)

    # A refused grant reaches the app too, so it can read the error (RFC 6749 §5.2).
    replay = redeem(client, spa, flow, SPA_ORIGIN)
    assert replay.status_code == HTTPStatus.BAD_REQUEST
    assert replay.json()["error"] == "invalid_grant"
    assert_cors_for(replay, SPA_ORIGIN)


@pytest.mark.spec("RFC 7009", "2.1")
@pytest.mark.spec("RFC 6750", "2.1")
@pytest.mark.parametrize("name", list(CORS_ENDPOINTS))
def test_spa_origin_gets_the_preflight_and_the_answer(client, spa, spa_tokens, name):
    answer = preflight(client, name, SPA_ORIGIN)
    assert answer.status_code == HTTPStatus.NO_CONTENT
    assert_cors_for(answer, SPA_ORIGIN)
    assert CORS_ENDPOINTS[name] in answer["Access-Control-Allow-Methods"]

    response = actual(client, name, SPA_ORIGIN, spa_tokens, spa)
    assert response.status_code == HTTPStatus.OK, response.content
    assert_cors_for(response, SPA_ORIGIN)


def test_userinfo_preflight_allows_get_and_post(client, spa):
    answer = preflight(client, "user-info", SPA_ORIGIN)
    assert answer["Access-Control-Allow-Methods"] == "GET, POST"
    assert answer["Allow"] == "GET, POST, OPTIONS"


# --- every other origin


@pytest.mark.parametrize("origin", NOT_OURS)
@pytest.mark.parametrize("name", list(CORS_ENDPOINTS))
def test_other_origins_get_no_cors(client, spa, spa_tokens, name, origin):
    assert_cors_for(preflight(client, name, SPA_ORIGIN), SPA_ORIGIN)

    answer = preflight(client, name, origin)
    assert answer.status_code == HTTPStatus.NO_CONTENT  # the browser refuses: no allow-origin
    assert_no_cors(answer)
    response = actual(client, name, origin, spa_tokens, spa)
    assert response.status_code == HTTPStatus.OK, response.content  # server-side answer as ever
    assert_no_cors(response)


@pytest.mark.parametrize("name", list(CORS_ENDPOINTS))
def test_a_server_side_apps_origin_gets_no_cors(client, spa, portal, name):
    assert_cors_for(preflight(client, name, SPA_ORIGIN), SPA_ORIGIN)
    assert_no_cors(preflight(client, name, WEB_ORIGIN))


def test_a_server_side_apps_token_request_from_its_origin_gets_no_cors(
    client, portal, run_code_flow
):
    flow = run_code_flow(portal, scope="openid profile")
    response = redeem(client, portal, flow, WEB_ORIGIN)
    assert response.status_code == HTTPStatus.OK, response.content
    assert_no_cors(response)


@pytest.mark.parametrize("name", list(CORS_ENDPOINTS))
def test_a_disabled_spas_origin_gets_no_cors(client, spa, admin_user, name):
    assert_cors_for(preflight(client, name, SPA_ORIGIN), SPA_ORIGIN)
    services.disable_client(client=spa, actor=admin_user)
    assert_no_cors(preflight(client, name, SPA_ORIGIN))


def test_a_lookalike_spa_does_not_lend_its_origins(admin_user, spa):
    services.register_client(
        actor=admin_user,
        kind=Client.Kind.SPA,
        name="Look-alike",
        redirect_uris=["https://app.example.com.evil.example/cb"],
        scopes="openid",
    )
    assert spa_origin_registered(SPA_ORIGIN)
    assert spa_origin_registered("https://app.example.com.evil.example")
    assert not spa_origin_registered("https://app.example.co")  # in both lists' text


# --- the endpoints that are not for browsers


def test_introspection_gets_no_cors(client, spa, portal, spa_tokens):
    assert_cors_for(preflight(client, "token", SPA_ORIGIN), SPA_ORIGIN)

    url = reverse("oauth2_provider:introspect")
    answer = client.options(url, HTTP_ORIGIN=SPA_ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert answer.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert_no_cors(answer)
    response = post_form(
        client,
        url,
        {"token": spa_tokens["access_token"]},
        HTTP_ORIGIN=SPA_ORIGIN,
        HTTP_AUTHORIZATION=basic_auth(portal.client_id, portal.test_secret),
    )
    assert response.status_code == HTTPStatus.OK
    assert_no_cors(response)


def test_authorize_gets_no_cors(spa, user):
    browser = HttpClient()
    browser.force_login(user)
    answer = browser.options(AUTHORIZE_URL, HTTP_ORIGIN=SPA_ORIGIN)
    assert answer.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert_no_cors(answer)
    params = authorization_params(spa, scope="openid profile")
    response = browser.get(AUTHORIZE_URL, params, HTTP_ORIGIN=SPA_ORIGIN)
    assert response.status_code == HTTPStatus.OK  # the consent page
    assert_no_cors(response)


# --- cost


def test_the_origin_check_is_one_query_and_none_without_an_origin(
    client, spa, django_assert_num_queries
):
    with django_assert_num_queries(1):
        assert_cors_for(preflight(client, "token", SPA_ORIGIN), SPA_ORIGIN)
    with django_assert_num_queries(0):
        assert_no_cors(preflight(client, "token", "null"))
    with django_assert_num_queries(0):
        answer = client.options(reverse("oauth2_provider:token"))
    assert answer.status_code == HTTPStatus.NO_CONTENT
    assert answer["Allow"] == "POST, OPTIONS"
    assert_no_cors(answer)
