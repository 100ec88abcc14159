"""End to end with a real OIDC client library (Authlib) against a live server.

discovery → code + PKCE → ID token verified against JWKS → userinfo → refresh → introspection →
revocation → RP-initiated logout → prompt=none answers login_required. The "browser" is a plain
HTTP session with cookies that signs in on our login page; nothing here reaches into Django.
"""

from __future__ import annotations

import re
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tests.oidc.conftest import WEB_REDIRECT_URI, WEB_SECRET

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # Authlib's OIDC claim rules (CodeIDToken) still live on its deprecated `authlib.jose`.
    pytest.mark.filterwarnings("ignore:authlib.jose module is deprecated"),
]

SIGNED_OUT = "https://web.example.com/signed-out"


@pytest.fixture
def provider(live_server, settings):
    """The live server is the issuer (discovery, tokens and `iss` all name it)."""
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return live_server.url


def follow_until_client(browser: requests.Session, url: str, base: str) -> str:
    """Follow our redirects in the browser; return the first URL that leaves our site."""
    for _ in range(10):
        response = browser.get(url, allow_redirects=False)
        assert response.status_code == HTTPStatus.FOUND, (response.status_code, response.text[:300])
        url = urljoin(base, response.headers["Location"])
        if not url.startswith(base):
            return url
    raise AssertionError("redirect loop")


def sign_in(browser: requests.Session, login_url: str, username: str, password: str) -> str:
    """Fill in our login page like a person would; returns where it sends the browser next."""
    page = browser.get(login_url)
    assert page.status_code == HTTPStatus.OK
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    response = browser.post(
        login_url,
        data={"csrfmiddlewaretoken": token, "login": username, "password": password},
        headers={"Referer": login_url},
        allow_redirects=False,
    )
    assert response.status_code == HTTPStatus.FOUND, response.text[:300]
    return response.headers["Location"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1")
@pytest.mark.spec("OpenID Connect RP-Initiated Logout 1.0", "2")
def test_authlib_client_full_lifecycle(provider, user, password, web_client):
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

    # --- discovery
    metadata = requests.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    assert metadata["issuer"] == provider
    jwks = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())

    # --- authorization code + PKCE, signing in on our login page
    rp = OAuth2Session(
        client_id=web_client.client_id,
        client_secret=WEB_SECRET,
        scope="openid profile email offline_access",
        redirect_uri=WEB_REDIRECT_URI,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(
        metadata["authorization_endpoint"], nonce=nonce, code_verifier=verifier
    )
    browser = requests.Session()
    first = browser.get(url, allow_redirects=False)
    login_url = urljoin(provider, first.headers["Location"])
    assert urlsplit(login_url).path == "/accounts/login/"
    back = urljoin(provider, sign_in(browser, login_url, "alice", password))
    callback = follow_until_client(browser, back, provider)
    assert callback.startswith(WEB_REDIRECT_URI + "?")
    returned = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert returned["state"] == state
    assert returned["iss"] == provider  # RFC 9207

    token = rp.fetch_token(
        metadata["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"].lower() == "bearer"

    # --- ID token verified against JWKS, claims checked by Authlib's own OIDC rules
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": provider}},
        claims_params={"nonce": nonce, "client_id": web_client.client_id},
    )
    claims.validate()
    assert claims["sub"] == str(user.pk)
    assert claims["auth_time"]
    assert claims["sid"]
    assert claims["at_hash"]

    # --- userinfo
    userinfo = rp.get(metadata["userinfo_endpoint"])
    assert userinfo.status_code == HTTPStatus.OK
    assert userinfo.json()["sub"] == claims["sub"]
    assert userinfo.json()["email"] == "alice@example.com"

    # --- refresh: a new access token, the ID token keeps the sign-in (OIDC Core §12.2)
    refreshed = rp.refresh_token(metadata["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    again = jwt.decode(refreshed["id_token"], jwks)
    assert again["auth_time"] == claims["auth_time"]
    assert again["sub"] == claims["sub"]
    assert "nonce" not in again

    # --- introspection by the client itself
    introspection = rp.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    ).json()
    assert introspection["active"] is True
    assert introspection["client_id"] == web_client.client_id

    # --- revocation
    revoked = rp.revoke_token(metadata["revocation_endpoint"], token=refreshed["access_token"])
    assert revoked.status_code == HTTPStatus.OK
    after = rp.introspect_token(
        metadata["introspection_endpoint"], token=refreshed["access_token"]
    ).json()
    assert after == {"active": False}

    # --- RP-initiated logout with the ID token as hint
    logout = browser.get(
        metadata["end_session_endpoint"],
        params={
            "id_token_hint": refreshed["id_token"],
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "bye",
        },
        allow_redirects=False,
    )
    assert logout.status_code == HTTPStatus.FOUND
    assert logout.headers["Location"] == f"{SIGNED_OUT}?state=bye"

    # --- the session is gone: prompt=none answers login_required to the client
    silent_url, silent_state = rp.create_authorization_url(
        metadata["authorization_endpoint"],
        nonce=secrets.token_urlsafe(16),
        code_verifier=secrets.token_urlsafe(48),
        prompt="none",
    )
    silent = browser.get(silent_url, allow_redirects=False)
    assert silent.status_code == HTTPStatus.FOUND
    answer = {k: v[0] for k, v in parse_qs(urlsplit(silent.headers["Location"]).query).items()}
    assert silent.headers["Location"].startswith(WEB_REDIRECT_URI + "?")
    assert answer["error"] == "login_required"
    assert answer["state"] == silent_state
    assert answer["iss"] == provider
