"""RFC 8628 with a real browser: a device polls while a person (Debian chromium via Playwright)
opens the verification URI, signs in, confirms the code and allows the app."""

from __future__ import annotations

import threading
import time
from http import HTTPStatus

import pytest
import requests

from accounts.models import AuditEvent
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from tests.oidc.device_helpers import register_device_app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server, settings):
    settings.IDP_ISSUER = live_server.url
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": live_server.url}
    settings.IDP_DEVICE_POLL_INTERVAL = 1  # the device's pace, kept short for the test
    return live_server.url


def poll_until_done(token_url: str, client_id: str, codes: dict, answers: list) -> None:
    """The device: poll every `interval` seconds (5 more after a slow_down), at most 60 s."""
    interval = codes["interval"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = requests.post(
            token_url,
            data={
                "grant_type": DEVICE_CODE_GRANT,
                "device_code": codes["device_code"],
                "client_id": client_id,
            },
            timeout=10,
        )
        body = response.json()
        answers.append(body.get("error", "tokens"))
        if body.get("error") == "slow_down":
            interval += 5
        elif body.get("error") != "authorization_pending":
            answers.append(body)
            return


@pytest.mark.spec("RFC 8628", "3.3")
def test_a_person_approves_a_device_in_a_real_browser_while_it_polls(
    provider, browser_page, user, password
):
    app = register_device_app(name="Deploy CLI")
    discovery = requests.get(f"{provider}/.well-known/openid-configuration", timeout=10).json()
    codes = requests.post(
        discovery["device_authorization_endpoint"],
        data={"client_id": app.client_id, "scope": "openid profile"},
        timeout=10,
    ).json()
    answers: list = []
    device = threading.Thread(
        target=poll_until_done,
        args=(discovery["token_endpoint"], app.client_id, codes, answers),
        daemon=True,
    )
    device.start()

    page = browser_page
    page.route("https://cli.example.com/**", lambda route: route.abort())
    page.goto(codes["verification_uri_complete"])
    assert "/accounts/login/" in page.url
    page.locator("#id_login").fill("alice")
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_url("**/device?**")
    # The code is filled in from the link; the person still confirms it.
    assert page.get_by_label("Code shown on your device").input_value() == codes["user_code"]
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url("**/device/confirm")
    assert page.get_by_text("Was this you?").is_visible()
    assert page.get_by_role("heading", name="Sign in to Deploy CLI on your device?").is_visible()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("**/device/done?**")
    assert page.get_by_role("heading", name="You're signed in on your device").is_visible()

    device.join(timeout=70)
    assert not device.is_alive()
    assert answers[0] == "authorization_pending", answers
    tokens = answers[-1]
    assert answers[-2] == "tokens", answers
    assert tokens["access_token"]
    assert tokens["refresh_token"]
    assert tokens["id_token"]
    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == HTTPStatus.OK
    assert userinfo.json()["sub"] == str(user.pk)
    assert AuditEvent.objects.filter(type=AuditEvent.Type.DEVICE_APPROVED, subject=user).exists()
