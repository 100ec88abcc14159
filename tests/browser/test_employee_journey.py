"""Acceptance: a new employee's first day, in Debian's chromium.

An administrator creates the account (accounts.services.register_user, as the admin's add-user
page does); the employee signs in for the first time, turns on an authenticator app, saves the
recovery codes (Download, then Continue), signs out; an app then sends them to sign in with
`ui_locales=de` (OIDC Core §3.1.2.1): the sign-in, the code step and consent are in German, the
app gets its code and exchanges it; they sign out. Every page on the way is a house page
(`data-house-layout` on <body>), never a library's stock screen, and says what the house says.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from accounts.services import register_user
from oauth_clients.models import Client
from tests.accounts.conftest import totp_code
from tests.browser.pages import APP_REDIRECT_PATH
from tests.oidc.conftest import make_client

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST_PASSWORD = "a first day passphrase, long enough"


class Journey:
    """The browser's pages, each checked for the house layout as it is reached."""

    def __init__(self, page, site: str) -> None:
        self.page, self.site = page, site
        self.documents: list[str] = []  # every page of the IdP the browser was shown
        self.checked: list[str] = []
        page.on("response", self._seen)

    def _seen(self, response) -> None:
        url = urlsplit(response.url)
        if (
            response.request.resource_type == "document"
            and response.url.startswith(self.site)
            and url.path != APP_REDIRECT_PATH  # the app's own page, not the IdP's
            and response.status < HTTPStatus.MULTIPLE_CHOICES
        ):
            self.documents.append(url.path)

    def at(self, path: str, *texts: str) -> None:
        """The browser is on `path` (a regular expression of the path), a house page, showing
        each of `texts`."""
        self.page.wait_for_url(re.compile(re.escape(self.site) + path + r"(\?.*)?$"))
        self.page.wait_for_load_state()
        assert self.page.locator("body[data-house-layout]").count() == 1, self.page.url
        shown = self.page.locator("main").inner_text()
        for text in texts:
            assert text in shown, (text, self.page.url, shown)
        self.checked.append(urlsplit(self.page.url).path)

    def sign_in_form(self, login: str, password: str, *, label: str, button: str) -> None:
        self.page.get_by_label(label).fill(login)
        self.page.get_by_label(re.compile("^Passwor[dt]$")).fill(password)
        self.page.get_by_role("button", name=button, exact=True).click()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_a_new_employee_enrols_then_signs_in_to_an_app_in_german(
    live_server, browser_page, password, tmp_path
):
    site = live_server.url
    users = get_user_model().objects
    admin = users.create_superuser("root", "root@example.com", password)
    request = RequestFactory().post("/admin/accounts/user/add/")
    request.user = admin
    erika = register_user(
        user=get_user_model()(
            username="erika",
            email="erika@example.com",
            first_name="Erika",
            last_name="Mustermann",
        ),
        password=FIRST_PASSWORD,
        actor=admin,
        request=request,
    )
    wiki_secret = "wiki-secret-" + "w" * 32
    wiki = make_client(
        name="Wiki",
        client_id="wiki",
        secret=wiki_secret,
        redirect_uris=f"{site}{APP_REDIRECT_PATH}",
        grant_types=[Client.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        allowed_scopes="openid profile email",
    )
    page = browser_page
    journey = Journey(page, site)

    # --- First sign-in (the browser's own language: English).
    page.goto(f"{site}/")
    journey.at("/accounts/login/", "Sign in to Company", "Email or username", "Keep me signed in")
    journey.sign_in_form("erika", FIRST_PASSWORD, label="Email or username", button="Sign in")
    journey.at("/account/", "Your account")

    # --- Two-step verification with an authenticator app.
    page.goto(f"{site}/accounts/2fa/")
    journey.at("/accounts/2fa/", "Two-step verification", "Authenticator app")
    page.goto(f"{site}/accounts/2fa/totp/activate/?{urlencode({'next': '/account/'})}")
    journey.at("/accounts/2fa/totp/activate/", "Enter the 6-digit code the app now shows:")
    secret = page.locator("#authenticator_secret").inner_text().strip()
    page.get_by_label("Authenticator code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()

    # --- The recovery codes: downloaded, then Continue back to where they were going.
    journey.at("/accounts/2fa/recovery-codes/", "Recovery codes", "Download (.txt)", "Copy")
    codes = Authenticator.objects.get(user=erika, type="recovery_codes").wrap().get_unused_codes()
    assert page.locator("#recovery_codes li").all_inner_texts() == codes
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download (.txt)").click()
    saved = tmp_path / "recovery-codes.txt"
    download_info.value.save_as(saved)
    assert saved.read_text().split() == codes
    page.get_by_role("link", name="Continue").click()
    journey.at("/account/", "Your account")

    page.get_by_role("navigation").get_by_role("button", name="Sign out").click()
    journey.at("/accounts/login/", "Sign in to Company")

    # --- The wiki sends them to sign in, asking for German.
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(12)
    page.goto(
        f"{site}/o/authorize/?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": wiki.client_id,
                "redirect_uri": f"{site}{APP_REDIRECT_PATH}",
                "scope": "openid profile email",
                "state": state,
                "nonce": secrets.token_urlsafe(12),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "ui_locales": "de",
            }
        )
    )
    journey.at(
        "/accounts/login/",
        "Bei Company anmelden",
        "um mit Wiki fortzufahren",
        "E-Mail-Adresse oder Benutzername",
        "Angemeldet bleiben",
    )
    assert page.evaluate("document.documentElement.lang") == "de"
    journey.sign_in_form(
        "erika", FIRST_PASSWORD, label="E-Mail-Adresse oder Benutzername", button="Anmelden"
    )

    journey.at(
        "/accounts/2fa/authenticate/",
        "Bestätigung in zwei Schritten",
        "Geben Sie den 6-stelligen Code aus Ihrer Authenticator-App oder einen Ihrer "
        "Wiederherstellungscodes ein.",
    )
    assert page.evaluate("document.documentElement.lang") == "de"
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Weiter").click()

    journey.at("/o/authorize/", "Wiki möchte Ihr Company-Konto verwenden", "Nicht Sie?")
    assert page.evaluate("document.documentElement.lang") == "de"
    with page.expect_request(re.compile(re.escape(site + APP_REDIRECT_PATH) + r"\?")) as sent:
        page.get_by_role("button", name="Zulassen").click()

    # --- The app gets its code and exchanges it.
    returned = parse_qs(urlsplit(sent.value.url).query)
    assert returned["state"] == [state]
    assert returned["iss"]
    tokens = requests.post(
        f"{site}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": returned["code"][0],
            "redirect_uri": f"{site}{APP_REDIRECT_PATH}",
            "code_verifier": verifier,
        },
        auth=(wiki.client_id, wiki_secret),
        timeout=10,
    )
    assert tokens.status_code == HTTPStatus.OK, tokens.text
    assert tokens.json()["id_token"]

    # --- And they sign out.
    page.goto(f"{site}/account/")
    journey.at("/account/", "Erika")
    page.get_by_role("navigation").get_by_role("button", name="Sign out").click()
    journey.at("/accounts/login/")
    page.goto(f"{site}/account/")
    journey.at("/accounts/login/")

    # No page of the IdP went unchecked: every one it showed was a house page.
    assert set(journey.documents) <= set(journey.checked), journey.documents
    assert len(journey.documents) >= 10
