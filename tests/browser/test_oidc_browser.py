"""A real browser (Debian chromium via Playwright) signs in to an app: login, consent, redirect."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from oauth_clients.models import Consent, Grant
from tests.oidc.conftest import SPA_REDIRECT_URI, basic_auth, make_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

APP_SECRET = "browser-app-secret-" + "b" * 30


@pytest.fixture
def provider(live_server, settings):
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    return live_server.url


@pytest.fixture
def app(db):
    """An untrusted confidential app: its users see the consent screen."""
    return make_client(
        name="Expense Reports",
        client_id="expenses",
        secret=APP_SECRET,
        redirect_uris=SPA_REDIRECT_URI,
        logo_uri="https://spa.example.com/logo.png",
        grant_types=["authorization-code", "refresh_token"],
        allowed_scopes="openid profile email",
    )


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def catch_redirect(page) -> list[str]:
    """Answer navigations to the app's redirect URI ourselves and remember where they went."""
    landed: list[str] = []

    def fulfil(route):
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>App</title>signed in")

    page.route(f"{SPA_REDIRECT_URI}**", fulfil)
    page.route("https://spa.example.com/logo.png", lambda route: route.abort())
    return landed


def start(page, provider: str, challenge: str, state: str) -> None:
    params = {
        "response_type": "code",
        "client_id": "expenses",
        "redirect_uri": SPA_REDIRECT_URI,
        "scope": "openid profile email",
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(f"{provider}/o/authorize/?{urlencode(params)}")


def sign_in(page, password: str) -> None:
    assert "/accounts/login/" in page.url
    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_sign_in_and_allow_lands_on_the_app_with_a_working_code(
    provider, browser_page, user, password, app
):
    page = browser_page
    landed = catch_redirect(page)
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)

    start(page, provider, challenge, state)
    sign_in(page, password)

    page.wait_for_selector("text=Expense Reports wants to use your")
    assert page.get_by_text("See your email address").is_visible()
    assert page.get_by_text("See your name and username").is_visible()
    page.get_by_role("button", name="Allow").click()

    page.wait_for_url(f"{SPA_REDIRECT_URI}**")
    assert len(landed) == 1
    query = {key: values[0] for key, values in parse_qs(urlsplit(landed[0]).query).items()}
    assert query["state"] == state
    assert query["iss"] == provider
    assert Consent.objects.filter(user=user, client=app).exists()
    assert Grant.objects.filter(user=user, application=app).count() == 1

    # The code is real: the app exchanges it.
    response = requests.post(
        f"{provider}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": SPA_REDIRECT_URI,
            "code_verifier": verifier,
        },
        headers={"Authorization": basic_auth("expenses", APP_SECRET)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["id_token"]


def test_deny_lands_on_the_app_with_access_denied(provider, browser_page, user, password, app):
    page = browser_page
    landed = catch_redirect(page)
    _verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)

    start(page, provider, challenge, state)
    sign_in(page, password)
    page.get_by_role("button", name="Deny").click()

    page.wait_for_url(f"{SPA_REDIRECT_URI}**")
    query = {key: values[0] for key, values in parse_qs(urlsplit(landed[0]).query).items()}
    assert query == {"error": "access_denied", "state": state, "iss": provider}
    assert not Consent.objects.exists()
    assert not Grant.objects.exists()
