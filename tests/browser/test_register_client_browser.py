"""A real browser registers a web app in the admin, copies its one-time secret, and the app then
signs a user in with it: authorize → login → (trusted, no consent) → code → token exchange."""

from __future__ import annotations

import base64
import hashlib
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model

from oauth_clients.models import Client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def people(password):
    users = get_user_model().objects
    admin = users.create_superuser("root", "root@example.com", password)
    alice = users.create_user(
        "alice", "alice@example.com", password, first_name="Alice", last_name="Liddell"
    )
    return admin, alice


def sign_in(page, username: str, password: str) -> None:
    page.get_by_label("Email or username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_admin_registers_a_web_app_and_it_signs_a_user_in_with_the_copied_secret(
    live_server, chromium_browser, people, password
):
    callback = f"{live_server.url}/rp/callback"

    # --- The administrator registers the app in the admin.
    admin_context = chromium_browser.new_context()
    admin_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = admin_context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    page.goto(f"{live_server.url}/admin/oauth_clients/client/")
    if "/login/" in page.url:
        sign_in(page, "root", password)
    page.get_by_role("link", name="Register an app").click()
    page.wait_for_url("**/admin/oauth_clients/client/register/")
    page.locator("input[name=kind][value=web]").check()
    page.get_by_label("Name:", exact=True).fill("Team wiki")
    page.get_by_label("Redirect URIs:", exact=True).fill(callback)
    page.get_by_label("Trusted first-party app (skips the consent screen)").check()
    page.get_by_label("Owner contact").fill("wiki-team@example.com")
    page.get_by_role("button", name="Register the app").click()

    # --- The one-time page: secret, issuer, discovery URL, client id, snippets.
    page.wait_for_url("**/setup/")
    secret_text = page.locator("#client-secret").inner_text().strip()
    client_id = page.locator("#setup-client-id").inner_text().strip()
    page.get_by_role("button", name="Copy").first.click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == secret_text
    assert len(copied) >= 43
    assert (
        page.locator("#setup-discovery").inner_text().endswith("/.well-known/openid-configuration")
    )
    assert callback in page.content()
    assert page.get_by_role("heading", name="Django + django-allauth").is_visible()

    # Shown once: a reload no longer has it.
    page.reload()
    assert page.locator("#client-secret").count() == 0
    assert copied not in page.content()
    assert problems == [], problems
    admin_context.close()

    registered = Client.objects.get(client_id=client_id)
    assert registered.kind == Client.Kind.WEB
    assert registered.is_trusted

    # --- A user signs in to the app in another browser.
    user_context = chromium_browser.new_context()
    page = user_context.new_page()
    page.set_default_timeout(15_000)
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(12)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": callback,
            "scope": "openid profile email",
            "state": state,
            "nonce": secrets.token_urlsafe(12),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    page.goto(f"{live_server.url}/o/authorize/?{query}")
    assert "/accounts/login/" in page.url
    sign_in(page, "alice", password)
    # Trusted app: no consent screen, straight back to the app's callback with the code. (The
    # live server has no such page and answers 404; the code is in the address.)
    page.wait_for_url(f"{callback}?*")
    returned = parse_qs(urlsplit(page.url).query)
    assert returned["state"] == [state]
    user_context.close()

    # --- The app exchanges the code with the secret the admin copied.
    token = requests.post(
        f"{live_server.url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": returned["code"][0],
            "redirect_uri": callback,
            "code_verifier": verifier,
        },
        auth=(client_id, copied),
        timeout=10,
    )
    assert token.status_code == HTTPStatus.OK, token.text
    body = token.json()
    assert body["id_token"]
    info = requests.get(
        f"{live_server.url}/o/userinfo/",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert info.status_code == HTTPStatus.OK, info.text
    assert info.json()["preferred_username"] == "alice"

    # The wrong secret would not have worked.
    replay = requests.post(
        f"{live_server.url}/o/token/",
        data={"grant_type": "client_credentials"},
        auth=(client_id, copied[:-1] + ("A" if copied[-1] != "A" else "B")),
        timeout=10,
    )
    assert replay.status_code == HTTPStatus.UNAUTHORIZED
