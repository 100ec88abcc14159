"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0)."""

from __future__ import annotations

import json
import time
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client as HttpClient
from jwcrypto import jwk, jwt
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import jwk_from_pem

from accounts.models import AuditEvent
from oauth_clients.keys import generate_rsa_private_key_pem
from oauth_clients.models import AccessToken, RefreshToken
from oauth_clients.oidc.consent import grant_consent
from tests.oidc.authorize_helpers import PageParser, authorize_code
from tests.oidc.conftest import FORM, basic_auth

LOGOUT_URL = "/o/logout/"
USERINFO_URL = "/o/userinfo/"
SIGNED_OUT = "https://web.example.com/signed-out"


def signed_in(browser: HttpClient) -> bool:
    return "_auth_user_id" in browser.session


def tokens_for(browser, oauth_client, exchange_code, scope="openid profile offline_access"):
    """Tokens obtained by `browser`'s current session for `oauth_client`."""
    flow = authorize_code(browser, oauth_client, scope=scope)
    response = exchange_code(oauth_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def userinfo_status(access_token: str) -> int:
    return HttpClient().get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code


def resign(id_token: str, **changes) -> str:
    """The same ID token with changed claims, signed with our active key (as if we issued it)."""
    claims = json.loads(jwt.JWT(jwt=id_token).token.objects["payload"].decode())
    claims.update(changes)
    key = jwk_from_pem(oauth2_settings.OIDC_RSA_PRIVATE_KEY)
    token = jwt.JWT(header={"alg": "RS256", "kid": key.thumbprint()}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


@pytest.fixture
def browser(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


@pytest.fixture
def web_tokens(browser, web_client, exchange_code):
    return tokens_for(browser, web_client, exchange_code)


# --------------------------------------------------------------------------- the happy path


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
@pytest.mark.parametrize("method", ["get", "post"])
def test_valid_hint_signs_out_and_returns_to_registered_uri_with_state(
    browser, user, web_tokens, method
):
    params = {
        "id_token_hint": web_tokens["id_token"],
        "post_logout_redirect_uri": SIGNED_OUT,
        "state": "st-123",
    }
    response = getattr(browser, method)(LOGOUT_URL, params)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == f"{SIGNED_OUT}?state=st-123"
    assert not signed_in(browser)
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGOUT, subject=user).exists()


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
@pytest.mark.spec("OpenID Connect Back-Channel Logout 1.0", "2.7")
def test_logout_revokes_this_sessions_tokens_of_every_app_and_no_other_session(
    browser, user, web_client, spa_client, web_tokens, exchange_code
):
    grant_consent(user=user, client=spa_client, scopes=["openid", "profile", "offline_access"])
    spa_tokens = tokens_for(browser, spa_client, exchange_code)
    elsewhere = HttpClient()
    elsewhere.force_login(user)
    other_session_tokens = tokens_for(elsewhere, web_client, exchange_code)
    for tokens in (web_tokens, spa_tokens, other_session_tokens):
        assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK

    browser.get(LOGOUT_URL, {"id_token_hint": web_tokens["id_token"]})

    assert not signed_in(browser)
    assert userinfo_status(web_tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    sid = json.loads(jwt.JWT(jwt=web_tokens["id_token"]).token.objects["payload"])["sid"]
    assert RefreshToken.objects.get(sid=sid, application=web_client).revoked is not None
    assert not AccessToken.objects.filter(sid=sid, application=web_client).exists()
    # Single sign-out: the other apps of the same session lose its tokens too;
    # the same app in another browser is untouched.
    assert userinfo_status(spa_tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert userinfo_status(other_session_tokens["access_token"]) == HTTPStatus.OK
    assert signed_in(elsewhere)
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED, client=web_client)
    assert event.subject == user
    assert event.extra["via"] == "rp-initiated logout"


def test_revoked_refresh_token_cannot_be_used_after_logout(
    browser, web_client, web_tokens, client, token_endpoint
):
    browser.get(LOGOUT_URL, {"id_token_hint": web_tokens["id_token"]})
    response = client.post(
        token_endpoint,
        urlencode({"grant_type": "refresh_token", "refresh_token": web_tokens["refresh_token"]}),
        content_type=FORM,
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_expired_hint_is_accepted(browser, web_tokens):
    expired = resign(web_tokens["id_token"], exp=int(time.time()) - 3600)
    response = browser.get(
        LOGOUT_URL, {"id_token_hint": expired, "post_logout_redirect_uri": SIGNED_OUT}
    )
    assert response["Location"] == SIGNED_OUT
    assert not signed_in(browser)


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_hint_signed_with_a_rotated_key_is_accepted(browser, web_tokens, settings):
    old_key = settings.OAUTH2_PROVIDER["OIDC_RSA_PRIVATE_KEY"]
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OIDC_RSA_PRIVATE_KEY": generate_rsa_private_key_pem(),
        "OIDC_RSA_PRIVATE_KEYS_INACTIVE": [old_key],
    }
    response = browser.get(
        LOGOUT_URL,
        {"id_token_hint": web_tokens["id_token"], "post_logout_redirect_uri": SIGNED_OUT},
    )
    assert response["Location"] == SIGNED_OUT
    assert not signed_in(browser)


def test_without_redirect_uri_the_user_lands_on_our_site(browser, web_tokens):
    response = browser.get(LOGOUT_URL, {"id_token_hint": web_tokens["id_token"]})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/"
    assert not signed_in(browser)


def test_anonymous_user_with_valid_hint_is_sent_back(client, web_tokens):
    response = client.get(
        LOGOUT_URL,
        {
            "id_token_hint": web_tokens["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "s",
        },
    )
    assert response["Location"] == f"{SIGNED_OUT}?state=s"


# --------------------------------------------------------------------------- confirmation


def confirm_form(response) -> dict[str, str]:
    assert response.status_code == HTTPStatus.OK, response.status_code
    page = PageParser(response.content.decode())
    return {i["name"]: i.get("value", "") for i in page.find_all("input") if i.get("name")}


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_without_hint_the_user_confirms_then_goes_to_the_registered_uri(browser, web_client):
    params = {"client_id": "web-app", "post_logout_redirect_uri": SIGNED_OUT, "state": "abc"}
    page = browser.get(LOGOUT_URL, params)
    fields = confirm_form(page)
    assert signed_in(browser)
    assert "Web App" in page.content.decode()
    response = browser.post(LOGOUT_URL, {**fields, "allow": "allow"})
    assert response["Location"] == f"{SIGNED_OUT}?state=abc"
    assert not signed_in(browser)


def test_the_user_may_stay_signed_in(browser, web_client):
    fields = confirm_form(browser.get(LOGOUT_URL, {"client_id": "web-app"}))
    response = browser.post(LOGOUT_URL, {**fields, "cancel": "cancel"})
    assert response.status_code == HTTPStatus.FOUND
    assert not response["Location"].startswith("https://")
    assert signed_in(browser)


def test_without_any_parameter_the_user_confirms(browser):
    fields = confirm_form(browser.get(LOGOUT_URL))
    response = browser.post(LOGOUT_URL, {**fields, "allow": "allow"})
    assert response["Location"] == "/"
    assert not signed_in(browser)


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_hint_of_another_user_asks_first(browser, web_client, exchange_code):
    bob = get_user_model().objects.create_user("bob", "bob@example.com", "bob password 12345")
    bobs_browser = HttpClient()
    bobs_browser.force_login(bob)
    bobs_hint = tokens_for(bobs_browser, web_client, exchange_code)["id_token"]
    confirm_form(browser.get(LOGOUT_URL, {"id_token_hint": bobs_hint}))
    assert signed_in(browser)
    assert signed_in(bobs_browser)


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_hint_from_another_session_of_the_same_user_asks_first(user, web_client, exchange_code):
    old = HttpClient()
    old.force_login(user)
    old_hint = tokens_for(old, web_client, exchange_code)["id_token"]
    current = HttpClient()
    current.force_login(user)
    confirm_form(current.get(LOGOUT_URL, {"id_token_hint": old_hint}))
    assert signed_in(current)


def test_confirmation_needs_our_csrf_token(user, web_client):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(user)
    fields = confirm_form(browser.get(LOGOUT_URL, {"client_id": "web-app"}))
    assert browser.post(LOGOUT_URL, {"allow": "allow"}).status_code == HTTPStatus.FORBIDDEN
    assert signed_in(browser)
    assert browser.post(LOGOUT_URL, {**fields, "allow": "allow"}).status_code == HTTPStatus.FOUND
    assert not signed_in(browser)


# --------------------------------------------------------------------------- refused requests:
# a branded page, no redirect, the session untouched.


def assert_refused(response, browser) -> None:
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not response.has_header("Location")
    assert "This sign-out request cannot be completed" in response.content.decode()
    assert signed_in(browser)


@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "3")
@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/signed-out",
        "https://web.example.com/signed-out/extra",
        "https://web.example.com/signed-out?x=1",
        "https://WEB.example.com/signed-out",
        "https://web.example.com:8443/signed-out",
        "https://evil@web.example.com/signed-out",
        "https://web.example.com/signed-out#f",
        "https://web.example.com/signed-out/..;/x",
        "https://web.example.com/callback",  # the login redirect URI, not a logout one
        "https://spa.example.com/signed-out",  # another client's logout URI
    ],
)
def test_unregistered_post_logout_redirect_uri_is_refused(browser, web_tokens, uri):
    ok = browser.get(LOGOUT_URL, {"client_id": "web-app", "post_logout_redirect_uri": SIGNED_OUT})
    assert ok.status_code == HTTPStatus.OK  # positive path: the registered one is offered
    params = {"id_token_hint": web_tokens["id_token"], "post_logout_redirect_uri": uri}
    assert_refused(browser.get(LOGOUT_URL, params), browser)
    assert_refused(
        browser.get(LOGOUT_URL, {"client_id": "web-app", "post_logout_redirect_uri": uri}), browser
    )


def test_redirect_uri_without_any_client_is_refused(browser):
    assert_refused(browser.get(LOGOUT_URL, {"post_logout_redirect_uri": SIGNED_OUT}), browser)


@pytest.mark.parametrize(
    "hint",
    ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "x" * 20_000],
    ids=["garbage", "three-parts", "alg-none", "huge"],
)
def test_unverifiable_hint_is_refused(browser, hint):
    assert_refused(browser.get(LOGOUT_URL, {"id_token_hint": hint}), browser)


def test_hint_signed_by_someone_else_is_refused(browser, web_tokens):
    claims = json.loads(jwt.JWT(jwt=web_tokens["id_token"]).token.objects["payload"])
    foreign = jwk.JWK.generate(kty="RSA", size=2048)
    forged = jwt.JWT(header={"alg": "RS256", "kid": foreign.thumbprint()}, claims=claims)
    forged.make_signed_token(foreign)
    assert_refused(browser.get(LOGOUT_URL, {"id_token_hint": forged.serialize()}), browser)


def test_hint_from_another_issuer_is_refused(browser, web_tokens):
    foreign_iss = resign(web_tokens["id_token"], iss="https://other-idp.example.com")
    assert_refused(browser.get(LOGOUT_URL, {"id_token_hint": foreign_iss}), browser)


def test_client_id_not_matching_the_hint_is_refused(browser, web_tokens, spa_client):
    params = {"id_token_hint": web_tokens["id_token"], "client_id": "spa-app"}
    assert_refused(browser.get(LOGOUT_URL, params), browser)


@pytest.mark.parametrize("client_id", ["no-such-app", "web\x00app", "\udcff"])
def test_unknown_client_is_refused(browser, client_id):
    response = browser.get(
        f"{LOGOUT_URL}?{urlencode({'client_id': client_id}, errors='surrogatepass')}"
    )
    assert_refused(response, browser)


@pytest.mark.parametrize("name", ["client_id", "state", "post_logout_redirect_uri"])
def test_200_kb_parameter_is_refused(browser, name):
    assert_refused(browser.get(LOGOUT_URL, {name: "A" * 200_000}), browser)


@pytest.mark.parametrize(
    "name", ["client_id", "state", "post_logout_redirect_uri", "id_token_hint"]
)
def test_nul_byte_is_refused(browser, web_client, name):
    assert_refused(browser.get(LOGOUT_URL, {name: "web\x00app"}), browser)


def test_broken_encoding_never_fails(browser, web_client):
    response = browser.get(f"{LOGOUT_URL}?client_id=%ff%fe&state=%zz&post_logout_redirect_uri=%00")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert signed_in(browser)


def test_confirm_page_keeps_the_request_for_the_post(browser, web_client):
    fields = confirm_form(
        browser.get(LOGOUT_URL, {"client_id": "web-app", "post_logout_redirect_uri": SIGNED_OUT})
    )
    assert fields["client_id"] == "web-app"
    assert fields["post_logout_redirect_uri"] == SIGNED_OUT
    # A tampered redirect in the confirmation is checked again.
    tampered = {**fields, "post_logout_redirect_uri": "https://evil.example.com/", "allow": "allow"}
    assert_refused(browser.post(LOGOUT_URL, tampered), browser)
