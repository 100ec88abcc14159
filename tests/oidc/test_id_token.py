"""ID token contents (OIDC Core §2, §3.1.3.6, §12.2) and the same claims from userinfo."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.test import Client as HttpClient
from jwcrypto import jwk, jwt

from oauth_clients.oidc.claims import build_claims
from tests.oidc.authorize_helpers import authorize_code, issuer
from tests.oidc.conftest import FORM, basic_auth

JWKS_URL = "/.well-known/jwks.json"
USERINFO_URL = "/o/userinfo/"


def verify(client: HttpClient, id_token: str) -> tuple[dict, dict]:
    """(header, claims) of an ID token verified against the published JWKS."""
    keys = jwk.JWKSet.from_json(client.get(JWKS_URL).content)
    token = jwt.JWT(jwt=id_token, key=keys, algs=["RS256"])
    return json.loads(token.header), json.loads(token.claims)


def left_half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


@pytest.fixture
def browser(user) -> HttpClient:
    """A signed-in browser session whose sid / auth_time the tests can read."""
    http = HttpClient()
    http.force_login(user)
    return http


def code_flow_tokens(exchange_code, oauth_client, browser, **kw):
    flow = authorize_code(browser, oauth_client, **kw)
    response = exchange_code(oauth_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    return flow, response.json()


@pytest.mark.spec("OpenID Connect Core 1.0", "2")
@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.3.6")
def test_code_flow_id_token_carries_every_required_claim(
    client, user, web_client, browser, exchange_code
):
    flow, tokens = code_flow_tokens(exchange_code, web_client, browser)
    header, claims = verify(client, tokens["id_token"])
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in client.get(JWKS_URL).json()["keys"]}
    session = browser.session
    assert claims["iss"] == issuer()
    assert claims["sub"] == str(user.pk)
    assert claims["aud"] == web_client.client_id
    assert claims["iat"] <= time.time() + 1
    assert claims["exp"] - claims["iat"] == pytest.approx(600, abs=2)
    assert claims["auth_time"] == session["idp_auth_time"]
    assert claims["nonce"] == flow.nonce
    assert claims["at_hash"] == left_half_hash(tokens["access_token"])
    assert claims["sid"] == session["idp_sid"]
    assert claims["amr"] == ["pwd"]


@pytest.mark.spec("OpenID Connect Core 1.0", "2")
def test_auth_time_is_this_sessions_sign_in_not_last_login(
    client, user, web_client, browser, exchange_code
):
    # Another browser signs in later: last_login moves, this session's auth_time must not.
    session = browser.session
    session["idp_auth_time"] = int(time.time()) - 3000
    session.save()
    user.last_login = datetime.now(tz=UTC)
    user.save(update_fields=["last_login"])
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser)
    _header, claims = verify(client, tokens["id_token"])
    assert claims["auth_time"] == session["idp_auth_time"]
    assert claims["auth_time"] != int(user.last_login.timestamp())


@pytest.mark.spec("OpenID Connect Core 1.0", "2")
def test_auth_time_survives_a_fresh_force_login_elsewhere(client, user, web_client, exchange_code):
    first = HttpClient()
    first.force_login(user)
    flow = authorize_code(first, web_client)
    first_auth_time = first.session["idp_auth_time"]
    time.sleep(1.1)
    other = HttpClient()
    other.force_login(user)  # another browser: new last_login, new session
    tokens = exchange_code(web_client, flow).json()
    _header, claims = verify(client, tokens["id_token"])
    assert claims["auth_time"] == first_auth_time
    assert claims["sid"] == first.session["idp_sid"] != other.session["idp_sid"]


@pytest.mark.spec("RFC 8176", "2")
def test_amr_reports_the_second_factor_allauth_recorded(
    client, user, web_client, browser, exchange_code
):
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser)
    assert verify(client, tokens["id_token"])[1]["amr"] == ["pwd"]
    session = browser.session
    now = time.time()
    session["account_authentication_methods"] = [
        {"method": "password", "at": now - 5, "username": "alice"},
        {"method": "mfa", "at": now - 2, "type": "totp", "id": 1},
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser)
    assert verify(client, tokens["id_token"])[1]["amr"] == ["mfa", "otp", "pwd"]


@pytest.mark.spec("OpenID Connect Core 1.0", "5.4")
def test_scope_claims_come_from_build_claims(client, user, web_client, browser, exchange_code):
    user.groups.add(Group.objects.create(name="engineering"))
    scopes = ["openid", "profile", "email", "groups"]
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser, scope=" ".join(scopes))
    _header, claims = verify(client, tokens["id_token"])
    expected = build_claims(user=user, scopes=scopes)
    assert {key: claims[key] for key in expected} == expected
    assert claims["groups"] == ["engineering"]


@pytest.mark.spec("OpenID Connect Core 1.0", "5.3.2")
def test_userinfo_answers_the_same_claims_as_the_id_token(
    client, user, web_client, browser, exchange_code
):
    scopes = ["openid", "profile", "email"]
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser, scope=" ".join(scopes))
    _header, claims = verify(client, tokens["id_token"])
    response = client.get(USERINFO_URL, HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    assert response.status_code == HTTPStatus.OK, response.content
    userinfo = response.json()
    assert userinfo == build_claims(user=user, scopes=scopes)
    assert {key: claims[key] for key in userinfo} == userinfo


@pytest.mark.spec("OpenID Connect Core 1.0", "5.4")
def test_openid_scope_alone_releases_no_profile_claims(client, web_client, browser, exchange_code):
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser, scope="openid")
    _header, claims = verify(client, tokens["id_token"])
    assert not {"email", "name", "preferred_username", "groups"} & set(claims)


def test_per_client_id_token_lifetime(client, web_client, browser, exchange_code):
    web_client.id_token_lifetime = 120
    web_client.save(update_fields=["id_token_lifetime"])
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser)
    _header, claims = verify(client, tokens["id_token"])
    assert claims["exp"] - claims["iat"] == pytest.approx(120, abs=2)


@pytest.mark.spec("OpenID Connect Core 1.0", "12.2")
def test_refreshed_id_token_keeps_identity_and_session_and_drops_nonce(
    client, user, web_client, browser, exchange_code, token_endpoint
):
    scope = "openid profile offline_access"
    _flow, tokens = code_flow_tokens(exchange_code, web_client, browser, scope=scope)
    _header, original = verify(client, tokens["id_token"])
    assert original["nonce"]
    refreshed = client.post(
        token_endpoint,
        urlencode({"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}),
        content_type=FORM,
        HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    body = refreshed.json()
    _header, claims = verify(client, body["id_token"])
    for name in ("iss", "sub", "aud", "auth_time", "sid", "amr"):
        assert claims[name] == original[name], name
    assert "nonce" not in claims
    assert claims["at_hash"] == left_half_hash(body["access_token"])
    assert claims["jti"] != original["jti"]
