"""Helpers for the account tests: sign in through allauth's page, read emailed links."""

from __future__ import annotations

import re

import pytest
import redis
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.deploy.servers import REDIS_HOST, REDIS_PORT, redis_db, require_services

REDIS_DB = redis_db("redis")  # the `redis` tests' own database on the machine's Redis
LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
RESET_URL = "/accounts/password/reset/"
CHANGE_URL = "/accounts/password/change/"
OVERVIEW_URL = "/account/"
WRONG_PASSWORD_ERROR = "The username and/or password you specified are not correct."


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth's rate-limit counters live in the cache; every test starts without any.

    Only the in-process cache is cleared (a shared Redis may serve other runs).
    """
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


@pytest.fixture
def redis_cache(settings):
    """The default cache (allauth's rate limits, the session store) on a Redis database of the
    `redis` tests' own; they run in the Makefile's PostgreSQL phase and fail, never skip, when
    Redis does not answer."""
    require_services(redis=True)
    server = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    server.flushdb()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "KEY_PREFIX": "idp",
            "KEY_FUNCTION": "idp.cache_keys.make_key",
        }
    }
    yield server
    server.flushdb()


def sign_in(client: Client, login: str, password: str, **extra: str):
    """POST allauth's login form the way a browser does (GET first for the CSRF cookie)."""
    client.get(LOGIN_URL)
    return client.post(LOGIN_URL, {"login": login, "password": password, **extra})


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def last_link(pattern: str = r"https?://\S+/accounts/password/reset/key/\S+/") -> str:
    """The last matching link from the emails sent so far."""
    assert mail.outbox, "no email was sent"
    links = re.findall(pattern, mail.outbox[-1].body)
    assert links, mail.outbox[-1].body
    return links[-1]


# --- Second factors ----------------------------------------------------------------------------

MFA_AUTHENTICATE_URL = "/accounts/2fa/authenticate/"
MFA_REAUTHENTICATE_URL = "/accounts/2fa/reauthenticate/"
TOTP_ACTIVATE_URL = "/accounts/2fa/totp/activate/"
REAUTHENTICATE_URL = "/accounts/reauthenticate/"


def totp_code(secret: str, *, at: float | None = None) -> str:
    """The code an authenticator app shows now (or at `at`), computed independently of allauth.

    allauth accepts only the current 30-second step (MFA_TOTP_TOLERANCE 0): a code read in the
    last moment of a step could reach the server in the next, so "now" waits for a fresh step
    then, as a person would.
    """
    import time

    import pyotp

    if at is None:
        left = 30 - time.time() % 30
        if left < 2:
            time.sleep(left + 0.05)
        at = time.time()
    return pyotp.TOTP(secret).at(at)


def other_totp_code(secret: str) -> str:
    """A well-formed code that is wrong for this secret at this moment (nor its neighbours)."""
    import time

    valid = {totp_code(secret, at=time.time() + drift) for drift in (-30, 0, 30)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


def enable_totp(user) -> str:
    """Give `user` an authenticator app (allauth's own activation); returns its secret."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def sign_in_with_totp(client: Client, login: str, password: str, secret: str, **extra: str):
    """Password, then the code the sign-in's second step asks for."""
    first = sign_in(client, login, password, **extra)
    assert first.status_code == 302, first.status_code
    assert first["Location"] == MFA_AUTHENTICATE_URL, first["Location"]
    return client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})


# --- Apps and their tokens ----------------------------------------------------------------------

APP_REDIRECT_URI = "https://notes.example.com/callback"
APP_SECRET = "notes-app-secret-" + "n" * 30


@pytest.fixture
def app(db):
    """An untrusted confidential web app: the user sees its consent screen."""
    from oauth_clients.models import Client as OAuthClient
    from tests.oidc.conftest import make_client

    return make_client(
        name="Team Notes",
        client_id="team-notes",
        secret=APP_SECRET,
        redirect_uris=APP_REDIRECT_URI,
        grant_types=[OAuthClient.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email offline_access",
        client_uri="https://notes.example.com/",
    )


def obtain_tokens(browser: Client, oauth_client, *, scope: str = "openid profile") -> dict:
    """What the app gets when `browser`'s signed-in session signs in to it: the authorization
    endpoint (consent allowed if asked), then the code exchanged at the token endpoint."""
    from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, consent_form
    from tests.oidc.conftest import basic_auth, pkce_pair, post_form

    verifier, challenge = pkce_pair()
    params = authorization_params(oauth_client, scope=scope, code_challenge=challenge)
    response = browser.get(AUTHORIZE_URL, params)
    if response.status_code == 200:  # the consent screen: Allow
        action, fields = consent_form(response)
        response = browser.post(action, {**fields, "allow": "Allow"})
    assert response.status_code == 302, (response.status_code, response.content[:300])
    from urllib.parse import parse_qs, urlsplit

    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    exchange = post_form(
        Client(),
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": params["redirect_uri"],
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
    )
    assert exchange.status_code == 200, exchange.content
    return exchange.json()


def userinfo_status(access_token: str) -> int:
    return Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_token}").status_code


def introspect_active(oauth_client, token: str) -> bool:
    from tests.oidc.conftest import basic_auth, post_form

    response = post_form(
        Client(),
        "/o/introspect/",
        {"token": token},
        HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
    )
    assert response.status_code == 200, response.content
    return bool(response.json()["active"])


def refresh_status(oauth_client, refresh_token: str) -> int:
    from tests.oidc.conftest import basic_auth, post_form

    return post_form(
        Client(),
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token},
        HTTP_AUTHORIZATION=basic_auth(oauth_client.client_id, oauth_client.test_secret),
    ).status_code


def id_token_claims(tokens: dict) -> dict:
    """The ID token's claims (signature checked elsewhere; here we read what it says)."""
    import base64
    import json

    payload = tokens["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
