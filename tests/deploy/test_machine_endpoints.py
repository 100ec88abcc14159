"""The machine endpoints' fast path (idp.middleware.MachineEndpointMiddleware): same answers and
security headers, without the session, CSRF, auth, messages, CSP and allauth middleware."""

from __future__ import annotations

from http import HTTPStatus
from importlib import import_module
from typing import Any
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client
from django.urls import clear_script_prefix
from prometheus_client import REGISTRY

from idp.middleware import MachineEndpointMiddleware
from oauth_clients.models import AccessToken
from oauth_clients.oidc.views import TokenView
from oauth_clients.oidc.views import token as token_views
from tests.oidc.conftest import basic_auth, post_form
from tests.oidc.conftest import exchange_code as exchange_code
from tests.oidc.conftest import issue_tokens as issue_tokens
from tests.oidc.conftest import machine_client as machine_client
from tests.oidc.conftest import run_code_flow as run_code_flow
from tests.oidc.conftest import token_endpoint as token_endpoint
from tests.oidc.conftest import web_client as web_client

pytestmark = pytest.mark.django_db

TOKEN_URL = "/o/token/"
MACHINE_CSP = MachineEndpointMiddleware.HEADERS["Content-Security-Policy"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def client_credentials(http: Client, oauth_client: Any, **headers: Any) -> Any:
    return post_form(
        http,
        TOKEN_URL,
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
        **headers,
    )


def assert_machine_headers(response: Any) -> None:
    assert response["X-Frame-Options"] == "DENY"
    assert response["Content-Security-Policy"] == MACHINE_CSP
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert len(response["X-Request-ID"]) == 32


def assert_site_policy(response: Any) -> None:
    """The full chain's django-csp policy (the settings' one), not the machine constant."""
    csp = response["Content-Security-Policy"]
    assert csp != MACHINE_CSP
    assert "form-action 'self'" in csp
    assert response["X-Frame-Options"] == "DENY"


@pytest.fixture
def session_store_load():
    """A spy on the configured session engine's `load` (the read of a session cookie)."""
    store = import_module(django_settings.SESSION_ENGINE).SessionStore
    with mock.patch.object(store, "load", autospec=True, side_effect=store.load) as load:
        yield load


@pytest.fixture
def token_view_requests():
    """The Django requests the token view received (a spy on its first step, `form_problem`)."""
    seen: list[Any] = []
    original = token_views.form_problem

    def spy(request: Any, **kwargs: Any) -> Any:
        seen.append(request)
        return original(request, **kwargs)

    with mock.patch.object(token_views, "form_problem", side_effect=spy):
        yield seen


# --- The positive path: the same answers, with the security headers --------------------------


def test_client_credentials_grant_answers_with_the_security_headers_and_an_access_line(
    captured_logs, machine_client
):
    response = client_credentials(Client(), machine_client)

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["token_type"] == "Bearer"
    assert "no-store" in response["Cache-Control"]
    assert_machine_headers(response)
    (line,) = captured_logs.records("idp.request")
    assert line["url_name"] == "oauth2_provider:token"
    assert line["status"] == HTTPStatus.OK
    assert line["user_id"] is None
    assert line["request_id"] == response["X-Request-ID"]
    assert AccessToken.objects.get().application == machine_client


def test_machine_endpoints_over_https_get_hsts(settings, machine_client):
    settings.SECURE_HSTS_SECONDS = 63072000
    response = client_credentials(Client(), machine_client, secure=True)
    assert response.status_code == HTTPStatus.OK
    assert response["Strict-Transport-Security"].startswith("max-age=63072000")
    assert_machine_headers(response)


def test_userinfo_with_a_bearer_token_answers_with_the_security_headers(
    captured_logs, web_client, issue_tokens
):
    token = issue_tokens(web_client)["access_token"]
    response = Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == HTTPStatus.OK
    assert response.json()["sub"]
    # CORS only for a registered single-page app's origin (tests/oidc/test_cors.py).
    assert "Access-Control-Allow-Origin" not in response
    assert_machine_headers(response)
    assert captured_logs.records("idp.request")[-1]["url_name"] == "oauth2_provider:user-info"


def test_introspection_and_revocation_answer_with_the_security_headers(web_client, issue_tokens):
    token = issue_tokens(web_client)["access_token"]
    auth = basic_auth(web_client.client_id, web_client.test_secret)

    introspected = post_form(Client(), "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert introspected.json()["active"] is True
    assert_machine_headers(introspected)
    revoked = post_form(Client(), "/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert revoked.status_code == HTTPStatus.OK
    assert_machine_headers(revoked)
    again = post_form(Client(), "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=auth)
    assert again.json() == {"active": False}


@pytest.mark.parametrize(
    ("path", "url_name", "key"),
    [
        ("/.well-known/openid-configuration", "oidc-connect-discovery-info", "issuer"),
        ("/.well-known/oauth-authorization-server", "oauth-server-metadata", "issuer"),
        ("/.well-known/jwks.json", "jwks-info", "keys"),
    ],
)
def test_discovery_and_jwks_answer_with_the_security_headers(captured_logs, path, url_name, key):
    response = Client().get(path)

    assert response.status_code == HTTPStatus.OK
    assert key in response.json()
    assert response["Access-Control-Allow-Origin"] == "*"
    assert_machine_headers(response)
    (line,) = captured_logs.records("idp.request")
    assert line["url_name"] == f"oauth2_provider:{url_name}"


def test_the_paths_are_the_endpoints_named_in_the_urlconf():
    middleware = MachineEndpointMiddleware(lambda request: HttpResponse())
    assert middleware.paths() == {
        "/o/token/",
        "/o/device-authorization/",
        "/o/par/",
        "/o/revoke_token/",
        "/o/introspect/",
        "/o/userinfo/",
        "/.well-known/jwks.json",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    }


def test_paths_are_matched_without_the_script_prefix(machine_client):
    """Mounted under a prefix (SCRIPT_NAME), `reverse` includes it and `path_info` does not."""
    try:
        response = client_credentials(Client(SCRIPT_NAME="/idp"), machine_client)
    finally:
        clear_script_prefix()
    assert response.status_code == HTTPStatus.OK, response.content
    assert response["Content-Security-Policy"] == MACHINE_CSP


# --- The fast path really skips the browser middleware ----------------------------------------


def test_a_token_request_with_a_session_cookie_loads_no_session(
    user, machine_client, session_store_load, token_view_requests
):
    browser = Client()
    browser.force_login(user)
    session_store_load.reset_mock()

    response = client_credentials(browser, machine_client)

    assert response.status_code == HTTPStatus.OK, response.content
    session_store_load.assert_not_called()
    (request,) = token_view_requests
    assert not hasattr(request, "session")
    assert not hasattr(request, "allauth")  # allauth's AccountMiddleware did not run
    assert isinstance(request.user, AnonymousUser)
    assert "Cookie" not in response.get("Vary", "")
    assert django_settings.SESSION_COOKIE_NAME not in response.cookies
    assert django_settings.CSRF_COOKIE_NAME not in response.cookies


def test_browser_pages_still_get_the_whole_chain(user, password, session_store_load):
    browser = Client()
    login_page = browser.get("/accounts/login/")
    assert login_page.status_code == HTTPStatus.OK
    assert django_settings.CSRF_COOKIE_NAME in login_page.cookies
    assert_site_policy(login_page)

    signed_in = browser.post("/accounts/login/", {"login": "alice", "password": password})
    assert signed_in.status_code == HTTPStatus.FOUND
    assert django_settings.SESSION_COOKIE_NAME in signed_in.cookies

    session_store_load.reset_mock()
    page = browser.get("/accounts/email/")
    assert page.status_code == HTTPStatus.OK
    session_store_load.assert_called()
    assert "Cookie" in page["Vary"]
    assert_site_policy(page)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/o/token", HTTPStatus.MOVED_PERMANENTLY), ("/o/token/extra", HTTPStatus.NOT_FOUND)],
)
def test_near_misses_take_the_normal_chain(path, status, token_view_requests):
    response = Client().get(path)

    assert response.status_code == status
    assert token_view_requests == []
    # The browser middleware ran: the lazy user touched the session (Vary: Cookie).
    assert "Cookie" in response["Vary"]
    if status == HTTPStatus.MOVED_PERMANENTLY:
        # CommonMiddleware's APPEND_SLASH, answered outside the CSP and X-Frame middleware.
        assert response["Location"] == TOKEN_URL
        assert "Content-Security-Policy" not in response
    else:
        assert_site_policy(response)


def test_get_only_documents_answer_other_methods_405_not_a_csrf_failure():
    """CsrfViewMiddleware does not run: a POST to discovery gets the view's 405."""
    response = Client(enforce_csrf_checks=True).post("/.well-known/openid-configuration")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert_machine_headers(response)


# --- What the skipped middleware guarded still holds ------------------------------------------


def test_an_unknown_host_is_refused_before_the_view(machine_client, token_view_requests):
    response = client_credentials(Client(HTTP_HOST="evil.example"), machine_client)

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert token_view_requests == []
    assert not AccessToken.objects.exists()


def test_a_view_that_raises_gets_the_branded_500_and_is_counted(captured_logs, machine_client):
    labels = {"view": "oauth2_provider:token", "exception": "RuntimeError"}
    before = sample("idp_http_exceptions_total", **labels)
    with mock.patch.object(TokenView, "post", side_effect=RuntimeError("boom")):
        response = client_credentials(Client(raise_request_exception=False), machine_client)

    assert response.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "Something went wrong on our side" in response.content.decode()
    assert_machine_headers(response)
    assert sample("idp_http_exceptions_total", **labels) == before + 1
    line = captured_logs.records("idp.request")[-1]
    assert (line["url_name"], line["status"]) == ("oauth2_provider:token", 500)
    assert not AccessToken.objects.exists()


def test_each_machine_path_is_resolved_once(web_client, issue_tokens):
    token = issue_tokens(web_client)["access_token"]
    browser = Client()
    with mock.patch("idp.middleware.resolve", wraps=import_module("django.urls").resolve) as spy:
        for _ in range(3):
            response = browser.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == HTTPStatus.OK
            assert browser.get("/.well-known/jwks.json").status_code == HTTPStatus.OK
    # A new handler (test Client) resolves each path at its first request, then reuses it.
    assert sorted(call.args[0] for call in spy.call_args_list) == [
        "/.well-known/jwks.json",
        "/o/userinfo/",
    ]
