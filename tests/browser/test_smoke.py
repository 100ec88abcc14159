"""The browser harness itself works: Debian chromium renders our login page."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_page_renders_in_chromium(live_server, browser_page):
    browser_page.goto(f"{live_server.url}/accounts/login/")
    assert browser_page.locator("form").count() >= 1
    assert "Sign" in browser_page.title()
