"""Keyboard only (WCAG 2.2 SC 2.1.1 Keyboard, 2.4.3 Focus Order, 2.4.7 Focus Visible, 3.3.1 Error
Identification): sign-in, the two-step code step, consent and register-an-app with Tab,
Shift+Tab, Enter and Space alone. Each page opens with the focus on its first field, every stop
shows where the focus is, and an error names the field it belongs to."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from oauth_clients.models import Client
from tests.accounts.conftest import WRONG_PASSWORD_ERROR, enable_totp, other_totp_code, totp_code
from tests.browser.pages import APP_REDIRECT_PATH, prepare

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ACTIVE = "document.activeElement"


def focused(page) -> dict:
    """The focused element: its tag, id, name, value and text, and whether its focus shows (a
    :focus-visible outline or box shadow)."""
    return page.evaluate(
        """() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
          return {
            tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name') || '',
            value: el.value || '', text: (el.innerText || '').trim(),
            visible: el.matches(':focus-visible') && (outline || style.boxShadow !== 'none'),
          };
        }"""
    )


def tab_to(page, description: str, matches, *, key: str = "Tab", limit: int = 40) -> dict:
    """Press `key` until the focused element `matches`; every stop on the way shows its focus."""
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        assert now["visible"], f"no visible focus on {now} (on the way to {description})"
        if matches(now):
            return now
    raise AssertionError(f"{description} is not reached with {key}")


def described_by(page, selector: str) -> str:
    """The text of the elements `selector`'s aria-describedby names."""
    return page.locator(selector).evaluate(
        """el => (el.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean)
             .map(id => document.getElementById(id)?.innerText || '').join(' ')"""
    )


def keyboard_sign_in(page, login: str, password: str) -> None:
    """Type the name and password on the open sign-in page, focus starting on its first field."""
    assert focused(page)["id"] == "id_login"
    page.keyboard.type(login)
    tab_to(page, "the password", lambda el: el["id"] == "id_password")
    page.keyboard.type(password)
    page.keyboard.press("Enter")


def test_sign_in_by_keyboard_with_a_wrong_password_first(live_server, browser_page, password):
    get_user_model().objects.create_user("alice", "alice@example.com", password)
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    start = focused(page)
    assert (start["id"], start["visible"]) == ("id_login", True)

    # Forward through the form to its button and back again.
    page.keyboard.type("alice")
    tab_to(page, "the password", lambda el: el["id"] == "id_password")
    tab_to(page, "the reset link", lambda el: el["text"] == "Forgot your password?")
    tab_to(page, "keep me signed in", lambda el: el["id"] == "id_remember")
    tab_to(page, "the Sign in button", lambda el: el["text"] == "Sign in")
    tab_to(page, "the password", lambda el: el["id"] == "id_password", key="Shift+Tab")

    page.keyboard.type("not the password")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    # The form says what went wrong, aloud (role=alert), and keeps the name: the focus is on the
    # password, the field to type again.
    alert = page.get_by_role("alert")
    assert alert.inner_text().strip() == WRONG_PASSWORD_ERROR
    assert page.locator("#id_login").input_value() == "alice"
    assert focused(page)["id"] == "id_password"

    page.keyboard.type(password)
    tab_to(page, "keep me signed in", lambda el: el["id"] == "id_remember")
    page.keyboard.press("Space")
    assert page.locator("#id_remember").is_checked()
    tab_to(page, "the Sign in button", lambda el: el["text"] == "Sign in")
    with page.expect_navigation(url=f"{live_server.url}/account/"):
        page.keyboard.press("Enter")


def test_two_step_code_by_keyboard_ties_a_wrong_code_to_its_field(
    live_server, browser_page, password
):
    alice = get_user_model().objects.create_user("alice", "alice@example.com", password)
    secret = enable_totp(alice)
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    with page.expect_navigation(url=f"{live_server.url}/accounts/2fa/authenticate/"):
        keyboard_sign_in(page, "alice", password)

    start = focused(page)
    assert (start["id"], start["visible"]) == ("id_code", True)
    page.keyboard.type(other_totp_code(secret))
    with page.expect_navigation():
        page.keyboard.press("Enter")

    # The error belongs to the code field: marked invalid, described by the message, focused.
    code = page.locator("#id_code")
    assert code.get_attribute("aria-invalid") == "true"
    assert "Incorrect code." in described_by(page, "#id_code")
    assert focused(page)["id"] == "id_code"

    page.keyboard.type(totp_code(secret))
    tab_to(page, "Continue", lambda el: el["text"] == "Continue")
    with page.expect_navigation(url=f"{live_server.url}/account/"):
        page.keyboard.press("Space")


def test_consent_by_keyboard_reaches_allow_and_deny(live_server, browser_page, password):
    page = browser_page
    visit = prepare(page, state=None, site=live_server.url, password=password)
    page.goto(live_server.url + visit.values["app"])
    with page.expect_navigation(url=re.compile(r"/o/authorize/")):
        keyboard_sign_in(page, "alice", password)
    page.get_by_role("heading", name=re.compile("Wiki")).wait_for()

    # From the top of the page: the skip link first, then on to Allow; Deny right after it.
    tab_to(page, "the skip link", lambda el: el["text"] == "Skip to content", limit=1)
    tab_to(page, "Allow", lambda el: el["text"] == "Allow")
    tab_to(page, "Deny", lambda el: el["text"] == "Deny", limit=1)
    tab_to(page, "Allow", lambda el: el["text"] == "Allow", key="Shift+Tab", limit=1)
    with page.expect_request(re.compile(re.escape(APP_REDIRECT_PATH) + r"\?code=")):
        page.keyboard.press("Space")


def test_register_an_app_by_keyboard(live_server, browser_page, password):
    get_user_model().objects.create_superuser("root", "root@example.com", password)
    page = browser_page
    page.goto(f"{live_server.url}/admin/oauth_clients/client/register/")
    with page.expect_navigation(url=f"{live_server.url}/admin/oauth_clients/client/register/"):
        keyboard_sign_in(page, "root", password)

    # The first field is the kind of app, its first choice a web app: Space picks it.
    start = focused(page)
    assert (start["name"], start["value"], start["visible"]) == ("kind", "web", True)
    page.keyboard.press("Space")

    # Sent without a name and redirect URI: each error sits on its field.
    # Past every field of the form (the API and key fields included).
    tab_to(page, "the Register button", lambda el: el["value"] == "Register the app", limit=80)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    name = page.locator("#id_name")
    assert name.get_attribute("aria-invalid") == "true"
    assert "This field is required." in described_by(page, "#id_name")
    assert focused(page)["id"] == "id_name"

    page.keyboard.type("Team wiki")
    tab_to(page, "the redirect URIs", lambda el: el["id"] == "id_redirect_uris")
    page.keyboard.type("https://wiki.example.com/callback")
    tab_to(page, "the owner contact", lambda el: el["id"] == "id_owner_contact")
    page.keyboard.type("wiki-team@example.com")
    with page.expect_navigation(url=re.compile(r"/setup/$")):
        page.keyboard.press("Enter")
    assert page.locator("#client-secret").inner_text().strip()
    assert Client.objects.get(name="Team wiki").kind == Client.Kind.WEB
