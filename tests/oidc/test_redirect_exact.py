"""Loopback redirect URIs: any port for native apps only (RFC 8252 §7.3), an exact match for
every other kind of app, at the authorization endpoint (RFC 9700 §4.1.3) and at RP-initiated
logout (RP-Initiated Logout 1.0 §3)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest
from django.test import Client as HttpClient

from oauth_clients.models import Client, Grant
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    assert_error_page,
    authorization_params,
    authorize_code,
    redirect_query,
)
from tests.oidc.conftest import make_client

LOGOUT_URL = "/o/logout/"
CALLBACK = "http://127.0.0.1:8765/callback"
SIGNED_OUT = "http://127.0.0.1:8765/signed-out"
# The same loopback host and path, another port or none: another program on that machine.
OTHER_PORTS = ["http://127.0.0.1:8766/{path}", "http://127.0.0.1/{path}"]


def loopback_client(kind: str) -> Client:
    """An app of `kind` registered with loopback sign-in and sign-out URIs on port 8765."""
    confidential = kind == Client.Kind.WEB
    return make_client(
        name=f"Loopback {kind}",
        client_id=f"loopback-{kind}",
        kind=kind,
        client_type=Client.CLIENT_CONFIDENTIAL if confidential else Client.CLIENT_PUBLIC,
        secret="loopback-secret-" + "s" * 30 if confidential else "",
        redirect_uris=CALLBACK,
        post_logout_redirect_uris=SIGNED_OUT,
        grant_types=[Client.GRANT_AUTHORIZATION_CODE],
        allowed_scopes="openid profile email",
        is_trusted=True,
    )


@pytest.fixture
def browser(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def signed_in(browser: HttpClient) -> bool:
    return "_auth_user_id" in browser.session


def assert_logout_refused(response: Any, browser: HttpClient) -> None:
    """The branded sign-out error page: no redirect, and the session is still there."""
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.status_code
    assert not response.has_header("Location")
    assert "This sign-out request cannot be completed" in response.content.decode()
    assert signed_in(browser)


def id_token_for(browser: HttpClient, oauth_client: Client, exchange_code) -> str:
    flow = authorize_code(browser, oauth_client, scope="openid")
    response = exchange_code(oauth_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["id_token"]


# --------------------------------------------------------------------------- authorization


@pytest.mark.spec("RFC 8252", "7.3")
@pytest.mark.parametrize(
    "redirect_uri", [CALLBACK, "http://127.0.0.1:8766/callback", "http://127.0.0.1/callback"]
)
def test_native_app_loopback_redirect_uri_matches_on_any_port(browser, db, redirect_uri):
    native = loopback_client(Client.Kind.NATIVE)
    params = authorization_params(native, redirect_uri=redirect_uri)
    query = redirect_query(browser.get(AUTHORIZE_URL, params), redirect_uri)
    assert query["code"]
    assert query["state"] == params["state"]


@pytest.mark.spec("RFC 9700", "4.1.3")
@pytest.mark.spec("RFC 8252", "7.3")
@pytest.mark.parametrize("kind", [Client.Kind.WEB, Client.Kind.SPA])
@pytest.mark.parametrize("other", OTHER_PORTS, ids=["other-port", "no-port"])
def test_loopback_redirect_uri_of_other_kinds_matches_exactly(browser, db, kind, other):
    app = loopback_client(kind)
    # The registered URI, port included, still works.
    assert redirect_query(browser.get(AUTHORIZE_URL, authorization_params(app)), CALLBACK)["code"]
    redirect_uri = other.format(path="callback")
    response = browser.get(AUTHORIZE_URL, authorization_params(app, redirect_uri=redirect_uri))
    assert_error_page(response)
    assert not Grant.objects.filter(redirect_uri=redirect_uri).exists()


# --------------------------------------------------------------------------- logout


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
@pytest.mark.parametrize("uri", [SIGNED_OUT, "http://127.0.0.1:8766/signed-out"])
def test_native_app_post_logout_loopback_uri_matches_on_any_port(browser, db, uri):
    """Our choice (oauth_clients/oidc/views/logout.py): RFC 8252 §7.3's ephemeral loopback port
    holds for a native app's sign-out as for its sign-in."""
    loopback_client(Client.Kind.NATIVE)
    params = {"client_id": "loopback-native", "post_logout_redirect_uri": uri, "state": "s1"}
    page = browser.get(LOGOUT_URL, params)
    assert page.status_code == HTTPStatus.OK  # the confirmation page: no hint for this session
    response = browser.post(LOGOUT_URL, {**params, "allow": "allow"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{uri}?state=s1"
    assert not signed_in(browser)


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
@pytest.mark.parametrize("other", OTHER_PORTS, ids=["other-port", "no-port"])
def test_web_app_post_logout_loopback_uri_matches_exactly(browser, db, exchange_code, other):
    web = loopback_client(Client.Kind.WEB)
    hint = id_token_for(browser, web, exchange_code)
    registered = {"client_id": web.client_id, "post_logout_redirect_uri": SIGNED_OUT}
    assert browser.get(LOGOUT_URL, registered).status_code == HTTPStatus.OK  # offered
    uri = other.format(path="signed-out")
    by_client = {"client_id": web.client_id, "post_logout_redirect_uri": uri}
    assert_logout_refused(browser.get(LOGOUT_URL, by_client), browser)
    by_hint = {"id_token_hint": hint, "post_logout_redirect_uri": uri}
    assert_logout_refused(browser.get(LOGOUT_URL, by_hint), browser)
    # The registered URI, port included, is followed (after the refusals: it ends the session).
    response = browser.get(
        LOGOUT_URL, {"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT}
    )
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == SIGNED_OUT
    assert not signed_in(browser)
