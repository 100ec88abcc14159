"""Two real browsers: one signs the other out from the sessions page (chromium via Playwright)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def alice(password):
    return get_user_model().objects.create_user("alice", "alice@example.com", password)


def _sign_in(page, url: str, password: str) -> None:
    page.goto(f"{url}/accounts/login/")
    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{url}/account/")


def test_one_browser_signs_the_other_out(live_server, chromium_browser, alice, password):
    laptop_context = chromium_browser.new_context()
    phone_context = chromium_browser.new_context(user_agent=PHONE_UA)
    try:
        laptop, phone = laptop_context.new_page(), phone_context.new_page()
        _sign_in(phone, live_server.url, password)
        _sign_in(laptop, live_server.url, password)

        laptop.get_by_role("link", name="See all sessions").click()
        laptop.wait_for_url(f"{live_server.url}/accounts/sessions/")
        rows = laptop.get_by_role("row")
        phone_row = rows.filter(has_text="Safari on iPhone")
        assert phone_row.count() == 1
        assert rows.filter(has_text="This browser").count() == 1
        phone_row.get_by_role("button", name="Sign out").click()
        laptop.wait_for_url(f"{live_server.url}/accounts/sessions/")
        assert laptop.get_by_text("That session was signed out.").is_visible()
        assert laptop.get_by_role("row").filter(has_text="Safari on iPhone").count() == 0

        phone.goto(f"{live_server.url}/account/")
        assert "/accounts/login/" in phone.url, "the phone is signed out"
        laptop.goto(f"{live_server.url}/account/")
        assert laptop.url == f"{live_server.url}/account/", "the laptop is not"
    finally:
        laptop_context.close()
        phone_context.close()
