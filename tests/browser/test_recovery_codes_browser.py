"""Turning on an authenticator app in a real browser: the recovery codes page's Download, Copy
and Continue (Debian chromium via Playwright), under the site's CSP."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model

from tests.accounts.conftest import totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice(password):
    return get_user_model().objects.create_user("alice", "alice@example.com", password)


def _watch(page) -> list[str]:
    """Console errors (a CSP refusal shows there), page errors and failed responses."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    return problems


def test_authenticator_app_then_recovery_codes_download_copy_and_continue(
    live_server, browser_page, alice, password, tmp_path
):
    page = browser_page
    site = live_server.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    problems = _watch(page)

    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Email or username").fill("alice")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{site}/account/")

    page.goto(f"{site}/accounts/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").inner_text().strip()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    page.wait_for_url(f"{site}/accounts/2fa/recovery-codes/**")

    codes = Authenticator.objects.get(user=alice, type="recovery_codes").wrap().get_unused_codes()
    shown = page.locator("#recovery_codes li").all_inner_texts()
    assert shown == codes
    assert (
        page.locator("#recovery_codes")
        .evaluate("list => getComputedStyle(list).fontFamily")
        .startswith("ui-monospace")
    )

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download (.txt)").click()
    download = download_info.value
    assert download.suggested_filename == "recovery-codes.txt"
    saved = tmp_path / "codes.txt"
    download.save_as(saved)
    assert saved.read_text().split() == codes

    page.get_by_role("button", name="Copy").click()
    page.get_by_role("status").filter(has_text="Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()").split() == codes

    page.get_by_role("link", name="Continue").click()
    page.wait_for_url(f"{site}/accounts/2fa/")
    assert problems == [], problems


@pytest.mark.staff_mfa
def test_staff_enrol_from_the_admin_and_the_codes_continue_back_to_it(
    live_server, browser_page, password
):
    """Staff asked for the admin: enrolment page → authenticator app → recovery codes →
    Continue to the admin, whose step-up then takes one of the codes just saved."""
    staff = get_user_model().objects.create_user(
        "helpdesk", "helpdesk@example.com", password, is_staff=True, is_superuser=True
    )
    page = browser_page
    site = live_server.url
    problems = _watch(page)

    page.goto(f"{site}/admin/")
    page.wait_for_url(f"{site}/accounts/login/?next=%2Fadmin%2F")
    page.get_by_label("Email or username").fill("helpdesk")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()

    page.wait_for_url(f"{site}/account/two-step-required/?next=%2Fadmin%2F")
    page.get_by_role("link", name="Use an authenticator app").click()
    page.wait_for_url(f"{site}/accounts/2fa/totp/activate/?next=%2Fadmin%2F")
    secret = page.locator("#authenticator_secret").inner_text().strip()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()

    page.wait_for_url(f"{site}/accounts/2fa/recovery-codes/?next=%2Fadmin%2F")
    codes = Authenticator.objects.get(user=staff, type="recovery_codes").wrap().get_unused_codes()
    assert page.locator("#recovery_codes li").all_inner_texts() == codes
    page.get_by_role("link", name="Continue").click()

    # The admin asks this password-only session for its second step; a recovery code does.
    page.wait_for_url(f"{site}/accounts/2fa/reauthenticate/?next=%2Fadmin%2F")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{site}/admin/")
    assert problems == [], problems
