"""A real browser (Debian chromium via Playwright) signs in through the login page and signs out."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_user(password):
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", password, first_name="Alice", last_name="Liddell"
    )


def _watch_console(page) -> list[str]:
    """Collects CSP violations and script errors the page reports."""
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" or "Content Security Policy" in message.text
            else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def test_sign_in_through_the_login_page_and_sign_out(
    live_server, browser_page, browser_user, password
):
    page = browser_page
    problems = _watch_console(page)

    page.goto(f"{live_server.url}/account/")
    assert re.search(r"/accounts/login/\?next=", page.url), (
        "signed-out visitors are sent to sign in"
    )

    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()

    page.wait_for_url(f"{live_server.url}/account/")
    assert page.get_by_role("heading", name="Your account").is_visible()
    assert page.get_by_text("Alice Liddell").is_visible()

    # The header's Sign out is a button (POST with CSRF): it signs out at once, no "Are you
    # sure?" page, and the site root then offers the sign-in page.
    page.get_by_role("navigation", name="Account").get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    assert page.get_by_role("heading", name=re.compile("^Sign in")).is_visible()
    assert not page.get_by_text("Are you sure you want to sign out?").count()

    page.goto(f"{live_server.url}/account/")
    assert "/accounts/login/" in page.url, "the session is gone"
    assert problems == [], problems


def test_wrong_password_shows_the_error_next_to_the_form(live_server, browser_page, browser_user):
    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in", exact=True).click()

    alert = page.get_by_role("alert")
    assert "not correct" in alert.inner_text()
    assert "/accounts/login/" in page.url


def test_login_page_works_at_phone_width_with_visible_keyboard_focus(live_server, browser_page):
    page = browser_page
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{live_server.url}/accounts/login/")

    no_sideways_scroll = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert no_sideways_scroll

    # The sign-in name has the focus on arrival (static/idp/focus.js); from the top of the
    # page, the skip link comes first and shows itself when focused.
    assert page.evaluate("document.activeElement.id") == "id_login"
    # Back to the top of the page (as a reload with the keyboard would be), then Tab.
    page.evaluate("document.body.tabIndex = -1; document.body.focus()")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.get_by_label("Email or username").focus()
    outline = page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; })()"
    )
    assert outline == ["solid", "3px"]
