"""The sign-in round trip of an authorization request, and `login_hint` (OIDC Core §3.1.2.1)."""

from __future__ import annotations

import time
from http import HTTPStatus
from urllib.parse import urlencode, urlsplit

import pytest

from oauth_clients.models import Grant
from tests.oidc.authorize_helpers import (
    AUTHORIZE_URL,
    PageParser,
    authorization_params,
    redirect_query,
)
from tests.oidc.conftest import WEB_REDIRECT_URI

LOGIN_URL = "/accounts/login/"


def login_field_value(response) -> str | None:
    assert response.status_code == HTTPStatus.OK, response.status_code
    (field,) = PageParser(response.content.decode()).find_all("input", name="login")
    return field.get("value")


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.3")
def test_anonymous_user_signs_in_and_the_request_continues(client, user, password, web_client):
    params = authorization_params(web_client)
    response = client.get(AUTHORIZE_URL, params)
    assert response.status_code == HTTPStatus.FOUND
    login_page = response["Location"]
    assert urlsplit(login_page).path == LOGIN_URL
    signed_in = client.post(login_page, {"login": "alice", "password": password})
    assert signed_in.status_code == HTTPStatus.FOUND, signed_in.content[:300]
    back = signed_in["Location"]
    assert urlsplit(back).path == AUTHORIZE_URL
    query = redirect_query(client.get(back), WEB_REDIRECT_URI)
    assert query["code"]
    assert query["state"] == params["state"]
    grant = Grant.objects.get()
    assert grant.amr == ["pwd"]  # from allauth's record of the password step
    assert grant.sid == client.session["idp_sid"]
    assert abs(grant.auth_time.timestamp() - time.time()) < 30


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
@pytest.mark.parametrize("hint", ["alice", "alice@example.com"])
def test_login_hint_prefills_the_sign_in_name(client, web_client, hint):
    plain = client.get(client.get(AUTHORIZE_URL, authorization_params(web_client))["Location"])
    assert not login_field_value(plain)
    response = client.get(AUTHORIZE_URL, authorization_params(web_client, login_hint=hint))
    assert login_field_value(client.get(response["Location"])) == hint


@pytest.mark.parametrize(
    "hint",
    ["a" * 300, "alice\nbob", "alice\u202ebob", " "],
    ids=["too-long", "newline", "bidi-override", "blank"],
)
def test_implausible_login_hint_is_not_offered(client, web_client, hint):
    response = client.get(AUTHORIZE_URL, authorization_params(web_client, login_hint=hint))
    assert response.status_code == HTTPStatus.FOUND
    assert not login_field_value(client.get(response["Location"]))


def test_login_hint_only_comes_from_an_authorization_request(client, db):
    foreign_next = "/account/?" + urlencode({"login_hint": "mallory"})
    page = client.get(LOGIN_URL, {"next": foreign_next})
    assert not login_field_value(page)
    external = "https://evil.example.com/o/authorize/?" + urlencode({"login_hint": "mallory"})
    assert not login_field_value(client.get(LOGIN_URL, {"next": external}))
