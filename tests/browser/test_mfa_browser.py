"""Passkeys and authenticator apps in a real browser (Debian chromium via Playwright).

Chrome's virtual authenticator (DevTools protocol `WebAuthn.addVirtualAuthenticator`) stands in
for a platform passkey. WebAuthn needs a secure context and a domain as relying-party id, so the
pages are opened on http://localhost (live_server's host), never 127.0.0.1.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    APP_REDIRECT_URI,
    APP_SECRET,
    id_token_claims,
    obtain_tokens,
    totp_code,
)
from tests.oidc.conftest import make_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(password):
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", password, first_name="Alice", last_name="Liddell"
    )


@pytest.fixture
def app(db):
    from oauth_clients.models import Client as OAuthClient

    return make_client(
        name="Team Notes",
        client_id="team-notes",
        secret=APP_SECRET,
        redirect_uris=APP_REDIRECT_URI,
        grant_types=[OAuthClient.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
        is_trusted=True,
    )


@pytest.fixture
def site(live_server) -> str:
    url = urlsplit(live_server.url)
    assert url.hostname == "localhost", "WebAuthn refuses an IP address as relying party id"
    return live_server.url


@pytest.fixture
def authenticator(browser_page):
    """A virtual platform authenticator that holds passkeys and verifies the user."""
    cdp = browser_page.context.new_cdp_session(browser_page)
    cdp.send("WebAuthn.enable")
    created = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    yield cdp, created["authenticatorId"]
    cdp.send("WebAuthn.disable")


def _left_the_add_page(url: str) -> bool:
    """The key's form was submitted and answered: still under /accounts/2fa/, but no longer on
    the add page (a pattern matching the add page itself returned before the POST finished)."""
    return "/accounts/2fa/" in url and "/webauthn/add/" not in url


def _watch(page) -> list[str]:
    """CSP violations, script errors and failed requests the page reports."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def _sign_in_with_password(page, site: str, password: str) -> None:
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def _sign_out(page, site: str) -> None:
    page.goto(f"{site}/accounts/logout/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto(f"{site}/account/")
    assert "/accounts/login/" in page.url


def _django_client_for(page) -> Client:
    """A test client holding the browser's session cookie (to read what apps would get)."""
    client = Client()
    for cookie in page.context.cookies():
        client.cookies[cookie["name"]] = cookie["value"]
    return client


def test_passkey_registration_and_sign_in_without_a_password(
    site, browser_page, authenticator, alice, password, app
):
    page = browser_page
    problems = _watch(page)
    cdp, authenticator_id = authenticator

    # --- Register a passkey from the security centre.
    _sign_in_with_password(page, site, password)
    page.wait_for_url(f"{site}/account/")
    page.get_by_role("link", name="Manage methods").click()
    page.get_by_role("link", name="Add a key").click()
    page.wait_for_url(f"{site}/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("Laptop passkey")
    page.get_by_label("Passwordless").check()
    page.get_by_role("button", name="Add").click()
    page.wait_for_url(_left_the_add_page)

    key = Authenticator.objects.get(user=alice, type=Authenticator.Type.WEBAUTHN)
    assert key.wrap().name == "Laptop passkey"
    assert key.wrap().is_passwordless is True
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    assert len(credentials["credentials"]) == 1
    assert credentials["credentials"][0]["isResidentCredential"] is True
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.MFA_CHANGED, subject=alice, extra__authenticator_type="webauthn"
    ).exists()

    # --- Sign in with it: no username, no password.
    _sign_out(page, site)
    page.goto(f"{site}/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{site}/account/")
    assert page.get_by_text("Alice Liddell").is_visible()

    # The session says how it signed in: a hardware-bound key (RFC 8176 `hwk`), no password.
    claims = id_token_claims(obtain_tokens(_django_client_for(page), app))
    assert claims["amr"] == ["hwk"]
    assert claims["acr"] == "phr"  # OpenID EAP: phishing-resistant
    assert problems == [], problems


def test_passkey_sign_in_fails_cleanly_without_a_registered_key(
    site, browser_page, authenticator, alice
):
    page = browser_page
    page.goto(f"{site}/accounts/login/")
    page.get_by_role("button", name="Sign in with a passkey").click()
    # The virtual authenticator has no credential for this site: nothing signs in.
    page.wait_for_timeout(1500)
    page.goto(f"{site}/account/")
    assert "/accounts/login/" in page.url


def test_security_key_as_second_step_after_the_password(
    site, browser_page, authenticator, alice, password
):
    page = browser_page
    problems = _watch(page)
    _sign_in_with_password(page, site, password)
    page.wait_for_url(f"{site}/account/")
    page.goto(f"{site}/accounts/2fa/webauthn/add/")
    page.get_by_label("Name").fill("Desk key")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url(_left_the_add_page)
    assert Authenticator.objects.get(user=alice, type=Authenticator.Type.WEBAUTHN)

    _sign_out(page, site)
    _sign_in_with_password(page, site, password)
    page.wait_for_url(f"{site}/accounts/2fa/authenticate/")
    page.get_by_role("button", name="Use a security key").click()
    page.wait_for_url(f"{site}/account/")
    assert problems == [], problems


def test_authenticator_app_set_up_in_the_browser(site, browser_page, alice, password):
    page = browser_page
    problems = _watch(page)
    _sign_in_with_password(page, site, password)
    page.wait_for_url(f"{site}/account/")
    page.goto(f"{site}/accounts/2fa/totp/activate/")
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    assert qr.is_visible()
    assert qr.evaluate("img => img.naturalWidth") > 0, "the QR code renders under our CSP"
    secret = page.locator("#authenticator_secret").inner_text().strip()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{site}/accounts/2fa/recovery-codes/")
    codes = [code.strip() for code in page.locator("#recovery_codes li").all_inner_texts()]
    assert len(codes) == 10
    assert Authenticator.objects.filter(user=alice, type=Authenticator.Type.TOTP).exists()
    assert problems == [], problems
