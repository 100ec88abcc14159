"""Every page a person can reach is in the house layout and the house's words; the pages that
were stock library screens (recovery codes, the admin gate, sign-in, the code step, sign-out,
consent, emails) do what a person needs there."""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.accounts.conftest import (
    APP_REDIRECT_URI,
    APP_SECRET,
    LOGIN_URL,
    MFA_AUTHENTICATE_URL,
    MFA_REAUTHENTICATE_URL,
    REAUTHENTICATE_URL,
    RESET_URL,
    TOTP_ACTIVATE_URL,
    enable_totp,
    is_signed_in,
    last_link,
    sign_in,
    totp_code,
)
from tests.browser.pages import State, paths
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params

pytestmark = pytest.mark.django_db

HOUSE_MARKER = "<body data-house-layout>"
# The library's words the house does not use (STYLE: "two-step verification", "Sign in").
LIBRARY_PHRASES = (
    "Two-Factor",
    "two-factor",
    "Login:",
    "Log in",
    "Sign In",
    "Sign Out",
    "E-mail",
    "Remember Me",
    "Confirm Access",
    "Bad Token",
    "Recovery Codes",
    "Successfully signed in",
)
RECOVERY_CODES_URL = "/accounts/2fa/recovery-codes/"
ADMIN_URL = "/admin/"


def _visible_text(html: str) -> str:
    """The page's text and attribute-free markup, without scripts and comments."""
    html = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)
    return re.sub(r"<!--.*?-->", "", html, flags=re.S)


def assert_house_page(response, path: str) -> str:
    assert response.status_code == HTTPStatus.OK, (path, response.status_code)
    html = response.content.decode()
    assert HOUSE_MARKER in html, f"{path} is not in the house layout"
    text = _visible_text(html)
    found = [phrase for phrase in LIBRARY_PHRASES if phrase in text]
    assert found == [], (path, found)
    return html


def _make_app(**fields):
    from oauth_clients.models import Client as OAuthClient
    from tests.oidc.conftest import make_client

    values = {
        "name": "Wiki",
        "client_id": "wiki",
        "secret": APP_SECRET,
        "redirect_uris": APP_REDIRECT_URI,
        "grant_types": [OAuthClient.GRANT_AUTHORIZATION_CODE, "refresh_token"],
        "allowed_scopes": "openid profile email",
        "logo_uri": "https://wiki.example.com/logo.png",
    }
    values.update(fields)
    return make_client(**values)


# --- Every reachable page -----------------------------------------------------------------------

# The plain pages of tests/browser/pages.py, the one list of every reachable page (the browser
# tests visit the others too: pages built from an app, an emailed link, the admin).
ANONYMOUS_PAGES = paths(State.ANONYMOUS)
SIGNED_IN_PAGES = paths(State.SIGNED_IN)
# With an authenticator app and its recovery codes (after a sign-in that used it).
TOTP_PAGES = paths(State.TOTP)


@pytest.mark.parametrize("path", ANONYMOUS_PAGES)
def test_every_anonymous_page_is_a_house_page(client, path):
    assert_house_page(client.get(path), path)


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_every_signed_in_page_is_a_house_page(client, user, password, path):
    sign_in(client, "alice", password)
    assert_house_page(client.get(path), path)


@pytest.mark.parametrize("path", TOTP_PAGES)
def test_every_page_of_a_user_with_an_authenticator_app_is_a_house_page(
    client, user, password, path
):
    secret = enable_totp(user)
    RecoveryCodes.activate(user)
    sign_in(client, "alice", password)
    client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})
    assert_house_page(client.get(path), path)


def test_the_code_step_and_the_password_reset_form_are_house_pages(client, user, password):
    enable_totp(user)
    sign_in(client, "alice", password)
    assert_house_page(client.get(MFA_AUTHENTICATE_URL), MFA_AUTHENTICATE_URL)

    Client().post(RESET_URL, {"email": "alice@example.com"})
    browser = Client()
    form_page = browser.get(last_link().replace("http://127.0.0.1:8000", ""), follow=True)
    html = assert_house_page(form_page, "reset from key")
    assert "Choose a new password" in html


def test_a_page_outside_the_house_fails_the_check(client):
    """The check itself can fail: a JSON document has no house layout."""
    response = client.get("/.well-known/openid-configuration")
    with pytest.raises(AssertionError, match="not in the house layout"):
        assert_house_page(response, "discovery")


# --- Recovery codes after turning on an authenticator app --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_recovery_codes_page_lists_the_codes_with_download_copy_and_continue_to_next(
    client, user, password
):
    sign_in(client, "alice", password)
    secret = client.get(TOTP_ACTIVATE_URL).context["form"].secret
    client.post(TOTP_ACTIVATE_URL, {"code": totp_code(secret)})
    codes = Authenticator.objects.get(user=user, type="recovery_codes").wrap().get_unused_codes()

    page = client.get(RECOVERY_CODES_URL, {"next": ADMIN_URL})

    html = assert_house_page(page, RECOVERY_CODES_URL)
    listed = re.findall(r"<li>(\d+)</li>", html.split('id="recovery_codes"')[1].split("</ul>")[0])
    assert listed == codes
    download = re.search(r'<a [^>]*id="download_recovery_codes"[^>]*>', html).group(0)
    assert 'download="recovery-codes.txt"' in download
    href = re.search(r'href="data:text/plain;charset=utf-8,([^"]*)"', download).group(1)
    assert unquote(href).split() == codes
    assert 'id="copy_recovery_codes"' in html
    assert "/static/idp/copy.js" in html
    assert re.search(r'<a class="button" id="recovery_codes_continue" href="/admin/">', html)


@pytest.mark.django_db(transaction=True)
def test_recovery_codes_continue_goes_to_the_two_step_page_without_a_safe_next(
    client, user, password
):
    sign_in(client, "alice", password)
    secret = client.get(TOTP_ACTIVATE_URL).context["form"].secret
    client.post(TOTP_ACTIVATE_URL, {"code": totp_code(secret)})

    html = client.get(RECOVERY_CODES_URL, {"next": "https://evil.example/"}).content.decode()

    assert 'id="recovery_codes_continue" href="/accounts/2fa/"' in html
    assert "evil.example" not in html.split('id="recovery_codes_continue"')[1].split(">")[0]


def test_the_enrolment_page_carries_next_to_the_authenticator_app_set_up(settings, password):
    settings.IDP_STAFF_MFA_REQUIRED = True
    get_user_model().objects.create_user(
        "helpdesk", "helpdesk@example.com", password, is_staff=True
    )
    client = Client()
    sign_in(client, "helpdesk", password, next=ADMIN_URL)

    html = client.get("/account/two-step-required/", {"next": ADMIN_URL}).content.decode()
    assert f'href="{TOTP_ACTIVATE_URL}?next=%2Fadmin%2F"' in html
    assert "The administration needs two-step verification in this session." in html

    activate = client.get(TOTP_ACTIVATE_URL, {"next": ADMIN_URL}).content.decode()
    assert f'action="{TOTP_ACTIVATE_URL}?next=%2Fadmin%2F"' in activate


# --- The staff gate at /admin/ ------------------------------------------------------------------


@pytest.mark.staff_mfa
def test_the_admin_gate_says_what_it_needs_and_offers_no_password(client, admin_user, password):
    sign_in(client, "root", password)  # a password-only session
    enable_totp(admin_user)  # enrolled since

    gate = client.get(ADMIN_URL)
    assert gate.status_code == HTTPStatus.FOUND
    assert gate["Location"].startswith(MFA_REAUTHENTICATE_URL)
    html = assert_house_page(client.get(gate["Location"]), gate["Location"])
    assert "The administration needs two-step verification in this session." in html
    assert "Use your password" not in html
    assert f'href="{REAUTHENTICATE_URL}' not in html

    # Opened by hand, the password page asks for no password either.
    password_page = client.get(REAUTHENTICATE_URL, {"next": ADMIN_URL}).content.decode()
    assert 'name="password"' not in password_page
    assert f'href="{MFA_REAUTHENTICATE_URL}?next=%2Fadmin%2F"' in password_page


def test_re_authentication_elsewhere_still_offers_the_password(client, user, password):
    secret = enable_totp(user)
    sign_in(client, "alice", password)
    client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})

    html = client.get(MFA_REAUTHENTICATE_URL, {"next": "/account/"}).content.decode()
    assert "Use your password" in html
    assert "The administration needs" not in html


# --- Sign-in -----------------------------------------------------------------------------------


def test_sign_in_page_uses_the_house_labels_and_one_reset_link(client):
    html = assert_house_page(client.get(LOGIN_URL), LOGIN_URL)
    assert '<label for="id_login">Email or username</label>' in html
    assert '<label for="id_remember">Keep me signed in</label>' in html
    assert html.count("Forgot your password?") == 1
    assert '<div class="card">' not in html, "no card around a lone button"


def test_sign_in_from_an_authorize_request_names_the_app_with_its_logo(client):
    app = _make_app()
    login = client.get(AUTHORIZE_URL, authorization_params(app))
    assert login["Location"].startswith(LOGIN_URL)

    html = client.get(login["Location"]).content.decode()
    assert "to continue to <strong>Wiki</strong>" in html
    assert 'src="https://wiki.example.com/logo.png"' in html


@pytest.mark.parametrize(
    "next_url",
    [
        "/o/authorize/?client_id=nobody",  # not registered
        "/o/authorize/?client_id=wiki&client_id=other",  # repeated
        "https://evil.example/o/authorize/?client_id=wiki",  # another host
        "/account/?client_id=wiki",  # not an authorization request
    ],
)
def test_sign_in_names_no_app_for_anything_else(client, next_url):
    _make_app()
    html = client.get(LOGIN_URL, {"next": next_url}).content.decode()
    assert "to continue to" not in html
    assert "Wiki" not in html


def test_the_app_lookup_costs_one_query_and_none_without_an_authorize_next(
    django_assert_num_queries,
):
    from accounts.templatetags.signin_app import signin_app

    _make_app()
    with django_assert_num_queries(1):
        assert signin_app("/o/authorize/?client_id=wiki&response_type=code").name == "Wiki"
    with django_assert_num_queries(0):
        assert signin_app("/account/?client_id=wiki") is None
        assert signin_app("/o/authorize/?client_id=" + "w" * 101) is None
        assert signin_app(None) is None


def test_sign_in_names_no_disabled_app(client):
    app = _make_app(is_active=False)
    next_url = f"/o/authorize/?{urlencode({'client_id': app.client_id})}"
    html = client.get(LOGIN_URL, {"next": next_url}).content.decode()
    assert "to continue to" not in html


# --- The code step ------------------------------------------------------------------------------


def test_code_step_mentions_recovery_codes_and_hides_the_key_without_one(client, user, password):
    enable_totp(user)
    sign_in(client, "alice", password)
    html = assert_house_page(client.get(MFA_AUTHENTICATE_URL), MFA_AUTHENTICATE_URL)
    assert "Two-step verification" in html
    assert "one of your recovery codes" in html
    assert "Use a security key" not in html


def test_code_step_offers_the_security_key_to_a_user_who_has_one(
    client, user, password, monkeypatch
):
    # A stand-in key without a real credential: allauth's WebAuthn challenge for it is stubbed
    # (a real key signs in through the page in tests/browser/test_mfa_browser.py).
    from allauth.mfa.base import views as mfa_views

    monkeypatch.setattr(mfa_views.webauthn_auth, "begin_authentication", lambda user: {})
    enable_totp(user)
    Authenticator.objects.create(
        user=user, type=Authenticator.Type.WEBAUTHN, data={"name": "Desk key", "credential": {}}
    )
    sign_in(client, "alice", password)
    html = client.get(MFA_AUTHENTICATE_URL).content.decode()
    assert "Use a security key" in html


# --- Sign-out -----------------------------------------------------------------------------------


def test_sign_out_by_post_needs_no_confirmation_page(client, user, password):
    sign_in(client, "alice", password)
    page = client.get("/account/").content.decode()
    assert re.search(
        r'<form class="inline-form" id="site-signout" method="post" action="/accounts/logout/">',
        page,
    )

    response = client.post("/accounts/logout/")
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(client)


def test_sign_out_by_get_asks_first_and_offers_cancel(client, user, password):
    sign_in(client, "alice", password)
    html = assert_house_page(client.get("/accounts/logout/"), "/accounts/logout/")
    assert "Are you sure you want to sign out?" in html
    assert re.search(r'<a class="button secondary" href="/account/">Cancel</a>', html)
    assert is_signed_in(client), "a GET never signs out"


def test_sign_out_by_post_without_csrf_is_refused(client, user, password):
    sign_in(client, "alice", password)
    forger = Client(enforce_csrf_checks=True)
    forger.cookies = client.cookies  # the victim's session, without the page's token
    assert forger.post("/accounts/logout/").status_code == HTTPStatus.FORBIDDEN
    assert is_signed_in(client)


# --- Consent -------------------------------------------------------------------------------------


def test_consent_shows_the_logo_not_you_and_no_signed_in_banner(client, user, password):
    app = _make_app()
    params = authorization_params(app)
    sign_in(client, "alice", password)
    response = client.get(AUTHORIZE_URL, params)

    html = assert_house_page(response, AUTHORIZE_URL)
    assert 'src="https://wiki.example.com/logo.png"' in html
    assert "Not you? Sign in as someone else" in html
    not_you = re.search(
        r'<button type="submit" form="site-signout" name="next" value="([^"]+)"', html
    )
    assert not_you.group(1).replace("&amp;", "&") == response.wsgi_request.get_full_path()
    assert "Successfully signed in" not in html
    assert 'class="messages"' not in html

    signed_out = client.post("/accounts/logout/", {"next": response.wsgi_request.get_full_path()})
    assert signed_out["Location"].startswith(AUTHORIZE_URL)
    login = urlsplit(client.get(signed_out["Location"])["Location"])
    assert login.path == LOGIN_URL
    (next_url,) = parse_qs(login.query)["next"]
    assert next_url == response.wsgi_request.get_full_path()


# --- Security emails ----------------------------------------------------------------------------


def test_security_emails_greet_from_the_company(settings, user, client, password):
    from accounts.branding import update_branding

    update_branding(company_name="Acme Corp", actor=None)
    sign_in(client, "alice", password)
    mail.outbox.clear()
    client.post(
        "/accounts/password/change/",
        {
            "oldpassword": password,
            "password1": "a brand new passphrase",
            "password2": "a brand new passphrase",
        },
    )

    (message,) = mail.outbox
    assert message.body.startswith("Hello from Acme Corp,")
    assert "Acme Corp\n" in message.body.split("Thank you,")[1]
    assert "127.0.0.1:8000!" not in message.body
    assert "Your password was changed" in message.subject
