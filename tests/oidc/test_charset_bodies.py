"""Form bodies in a charset other than UTF-8 (RFC 6749 Appendix B: the form body is UTF-8) get
the protocol's own error at every endpoint that reads one, in debug mode and in production:
OAuth error JSON at token, introspection and revocation (RFC 6749 §5.2), a Bearer challenge at
userinfo (RFC 6750 §3), the branded error page at authorize and logout (no redirect: nothing has
been validated yet). Django would raise BadRequest (a debug 500 page, a plain HTML 400 in
production) or, for a charset it does not know, quietly decode the body as UTF-8."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from tests.oidc.authorize_helpers import AUTHORIZE_URL, assert_error_page, authorization_params
from tests.oidc.conftest import FORM, basic_auth

LOGOUT_URL = "/o/logout/"
SIGNED_OUT = "https://web.example.com/signed-out"
# Declared UTF-8, in any spelling a client might send, and no charset at all: accepted.
UTF8_CONTENT_TYPES = [
    FORM,
    f"{FORM}; charset=utf-8",
    f"{FORM}; charset=UTF-8",
    f'{FORM}; charset="utf-8"',
]
# Any other charset, known to Python or not: refused before the body is decoded.
FOREIGN_CHARSETS = ["latin-1", "ISO-8859-1", "utf-16", "utf8", "bogus"]
MACHINE_ENDPOINTS = ["token", "introspect", "revoke-token"]


def post_in(http: HttpClient, url: str, data: dict[str, str], charset: str, **extra: str):
    """POST `data` as a client using `charset` would send it (ASCII-safe for a charset Python
    does not know). `generic` sends the bytes as they are; `post` would re-encode them."""
    text = urlencode(data)
    try:
        body = text.encode(charset)
    except LookupError:
        body = text.encode("ascii")
    return http.generic("POST", url, body, content_type=f"{FORM}; charset={charset}", **extra)


@pytest.fixture(params=[True, False], ids=["debug", "production"])
def debug(request, settings) -> bool:
    """Both modes: Django's own answer differs (debug 500 page, production HTML 400)."""
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def machine_auth(machine_client) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": basic_auth(machine_client.client_id, machine_client.test_secret)}


@pytest.fixture
def machine_token(client, machine_auth) -> str:
    response = client.post(
        reverse("oauth2_provider:token"),
        urlencode({"grant_type": "client_credentials"}),
        content_type=FORM,
        **machine_auth,
    )
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()["access_token"]


def machine_request(name: str, token: str) -> dict[str, str]:
    """A well-formed request for each machine endpoint, answered 200 when sent in UTF-8."""
    if name == "token":
        return {"grant_type": "client_credentials"}
    return {"token": token}


@pytest.fixture
def browser(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


# --- token, introspection, revocation: RFC 6749 §5.2 JSON


@pytest.mark.spec("RFC 6749", "5.2")
@pytest.mark.spec("RFC 6749", "B")
@pytest.mark.parametrize("content_type", UTF8_CONTENT_TYPES)
@pytest.mark.parametrize("name", MACHINE_ENDPOINTS)
def test_utf8_form_bodies_are_accepted(
    client, debug, machine_auth, machine_token, name, content_type
):
    response = client.post(
        reverse(f"oauth2_provider:{name}"),
        urlencode(machine_request(name, machine_token)),
        content_type=content_type,
        **machine_auth,
    )
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 6749", "5.2")
@pytest.mark.spec("RFC 6749", "B")
@pytest.mark.parametrize("charset", FOREIGN_CHARSETS)
@pytest.mark.parametrize("name", MACHINE_ENDPOINTS)
def test_foreign_charset_gets_the_oauth_error(
    client, debug, machine_auth, machine_token, name, charset
):
    response = post_in(
        client,
        reverse(f"oauth2_provider:{name}"),
        machine_request(name, machine_token),
        charset,
        **machine_auth,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "invalid_request"
    assert "UTF-8" in response.json()["error_description"]
    assert "no-store" in response["Cache-Control"]


# --- userinfo: RFC 6750 §3


@pytest.mark.spec("RFC 6750", "2.2")
@pytest.mark.parametrize("content_type", UTF8_CONTENT_TYPES)
def test_userinfo_utf8_form_body_is_accepted(
    client, debug, user, web_client, issue_tokens, content_type
):
    token = issue_tokens(web_client)["access_token"]
    response = client.post(
        reverse("oauth2_provider:user-info"),
        urlencode({"access_token": token}),
        content_type=content_type,
    )
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["sub"] == str(user.pk)


@pytest.mark.spec("RFC 6750", "3")
@pytest.mark.parametrize("charset", FOREIGN_CHARSETS)
def test_userinfo_foreign_charset_gets_the_bearer_error(
    client, debug, web_client, issue_tokens, charset
):
    token = issue_tokens(web_client)["access_token"]
    response = post_in(
        client, reverse("oauth2_provider:user-info"), {"access_token": token}, charset
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_request"')
    assert response.json()["error"] == "invalid_request"


# --- authorize and logout: the branded page, never a redirect


@pytest.mark.spec("OIDC Core", "3.1.2.1")
@pytest.mark.parametrize("content_type", UTF8_CONTENT_TYPES)
def test_authorize_utf8_form_post_is_accepted(browser, debug, web_client, content_type):
    params = authorization_params(web_client)
    response = browser.post(AUTHORIZE_URL, urlencode(params), content_type=content_type)
    assert response.status_code == HTTPStatus.FOUND, response.content[:300]
    assert response["Location"].startswith(params["redirect_uri"] + "?code=")


@pytest.mark.spec("RFC 6749", "4.1.2.1")
@pytest.mark.parametrize("charset", FOREIGN_CHARSETS)
def test_authorize_foreign_charset_gets_the_error_page(browser, debug, web_client, charset):
    params = authorization_params(web_client)
    response = post_in(browser, AUTHORIZE_URL, params, charset)
    assert_error_page(response)
    assert "UTF-8" in response.content.decode()


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
@pytest.mark.parametrize("content_type", UTF8_CONTENT_TYPES)
def test_logout_utf8_form_post_is_accepted(browser, debug, web_client, content_type):
    data = {"client_id": web_client.client_id, "post_logout_redirect_uri": SIGNED_OUT}
    response = browser.post(LOGOUT_URL, urlencode(data), content_type=content_type)
    # No hint: the signed-in user is asked to confirm (RP-Initiated Logout §2).
    assert response.status_code == HTTPStatus.OK, response.content[:300]
    assert SIGNED_OUT in response.content.decode()


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
@pytest.mark.parametrize("charset", FOREIGN_CHARSETS)
def test_logout_foreign_charset_gets_the_error_page(browser, debug, web_client, charset):
    data = {"client_id": web_client.client_id, "post_logout_redirect_uri": SIGNED_OUT}
    response = post_in(browser, LOGOUT_URL, data, charset)
    assert response.status_code == HTTPStatus.BAD_REQUEST, response.content[:300]
    assert not response.has_header("Location")
    body = response.content.decode()
    assert "This sign-out request cannot be completed" in body
    assert "UTF-8" in body
    assert "_auth_user_id" in browser.session  # nothing changed
