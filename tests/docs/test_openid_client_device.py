"""Node's openid-client (the certified RP library) completes the device authorization grant
(RFC 8628) against this IdP while a person approves the code in a real browser (Debian chromium
via Playwright): the device flow's acceptance and its one browser test."""

from __future__ import annotations

import json
import shutil
import subprocess
from http import HTTPStatus

import pytest
import requests

from accounts.models import AuditEvent
from tests.docs.conftest import ROOT
from tests.oidc.device_helpers import register_device_app

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NODE_DIR = ROOT / "tests" / "docs" / "node"
NODE = shutil.which("node")


@pytest.mark.spec("RFC 8628", "3.3")
@pytest.mark.spec("RFC 8628", "3.4")
def test_openid_client_polls_while_a_person_approves_in_a_real_browser(
    provider, settings, browser_page, user, password
):
    assert NODE, "node (20+) is needed"
    assert (NODE_DIR / "node_modules" / "openid-client").is_dir(), (
        "openid-client is not installed: make install (npm ci in tests/docs/node)"
    )
    settings.IDP_DEVICE_POLL_INTERVAL = 1
    app = register_device_app(name="Deploy CLI")
    device = subprocess.Popen(
        [NODE, str(NODE_DIR / "device_flow.mjs"), provider, app.client_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        codes = json.loads(device.stdout.readline() or "{}")
        assert codes.get("user_code"), device.stderr.read()[-2000:]

        page = browser_page
        page.route("https://cli.example.com/**", lambda route: route.abort())
        page.goto(codes["verification_uri_complete"])
        page.locator("#id_login").fill("alice")
        page.locator("#id_password").fill(password)
        page.locator("#id_password").press("Enter")
        page.wait_for_url("**/device?**")
        # The code is filled in from the link; the person still confirms it.
        assert page.get_by_label("Code shown on your device").input_value() == codes["user_code"]
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url("**/device/confirm")
        assert page.get_by_text("Was this you?").is_visible()
        assert page.get_by_role(
            "heading", name="Sign in to Deploy CLI on your device?"
        ).is_visible()
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url("**/device/done?**")
        assert page.get_by_role("heading", name="You're signed in on your device").is_visible()

        out, err = device.communicate(timeout=60)
    finally:
        if device.poll() is None:
            device.kill()
    assert device.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    # openid-client validated the ID token (issuer, audience, signature from JWKS, expiry).
    assert result["claims"]["sub"] == str(user.pk)
    assert result["claims"]["aud"] == app.client_id
    assert result["refresh_token"]
    userinfo = requests.get(
        f"{provider}/o/userinfo/",
        headers={"Authorization": f"Bearer {result['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == HTTPStatus.OK
    assert userinfo.json()["sub"] == str(user.pk)
    assert AuditEvent.objects.filter(type=AuditEvent.Type.DEVICE_APPROVED, subject=user).exists()
