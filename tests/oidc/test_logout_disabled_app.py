"""RP-initiated logout for a disabled app: the session ends, its registered redirect is never
followed (a decommissioned app's lapsed domain must not become an open redirect)."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.test import Client as HttpClient

from accounts.models import AuditEvent
from oauth_clients.services import disable_client
from tests.oidc.authorize_helpers import PageParser, authorize_code

LOGOUT_URL = "/o/logout/"
SIGNED_OUT = "https://web.example.com/signed-out"  # web_client's registered logout URI


def signed_in(browser: HttpClient) -> bool:
    return "_auth_user_id" in browser.session


def signed_in_browser(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def id_token_for(browser: HttpClient, oauth_client, exchange_code) -> str:
    flow = authorize_code(browser, oauth_client, scope="openid")
    response = exchange_code(oauth_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["id_token"]


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
def test_disabled_apps_redirect_is_not_followed_through_its_id_token_hint(
    user, admin_user, web_client, exchange_code
):
    def logout(browser: HttpClient, hint: str):
        params = {"id_token_hint": hint, "post_logout_redirect_uri": SIGNED_OUT, "state": "s"}
        return browser.get(LOGOUT_URL, params)

    enabled = signed_in_browser(user)
    response = logout(enabled, id_token_for(enabled, web_client, exchange_code))
    assert response["Location"] == f"{SIGNED_OUT}?state=s"  # enabled: back to the app

    browser = signed_in_browser(user)
    hint = id_token_for(browser, web_client, exchange_code)
    disable_client(client=web_client, actor=admin_user)
    response = logout(browser, hint)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"  # our own page, never the app's URI
    assert not signed_in(browser)  # the session still ends
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGOUT, subject=user).count() == 2


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
def test_disabled_apps_redirect_is_not_followed_through_its_client_id(user, admin_user, web_client):
    params = {"client_id": web_client.client_id, "post_logout_redirect_uri": SIGNED_OUT}
    assert HttpClient().get(LOGOUT_URL, params)["Location"] == SIGNED_OUT  # enabled

    disable_client(client=web_client, actor=admin_user)
    anonymous = HttpClient().get(LOGOUT_URL, {**params, "state": "s"})
    assert anonymous.status_code == HTTPStatus.FOUND
    assert anonymous["Location"] == "/"

    browser = signed_in_browser(user)
    page = browser.get(LOGOUT_URL, params)
    assert page.status_code == HTTPStatus.OK  # the user is asked, the app is not named
    assert web_client.name not in page.content.decode()
    form = PageParser(page.content.decode())
    fields = {i["name"]: i.get("value", "") for i in form.find_all("input") if i.get("name")}
    response = browser.post(LOGOUT_URL, {**fields, "allow": "allow"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"
    assert not signed_in(browser)
