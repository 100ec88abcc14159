"""Two-step verification: TOTP enrolment and sign-in, recovery codes, the lock, `amr`."""

from __future__ import annotations

import base64
import re
from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    MFA_AUTHENTICATE_URL,
    OVERVIEW_URL,
    TOTP_ACTIVATE_URL,
    enable_totp,
    id_token_claims,
    is_signed_in,
    obtain_tokens,
    other_totp_code,
    sign_in,
    sign_in_with_totp,
    totp_code,
)

pytestmark = pytest.mark.django_db

RECOVERY_CODES_URL = "/accounts/2fa/recovery-codes/"
GENERATE_CODES_URL = "/accounts/2fa/recovery-codes/generate/"


def _mfa_events(user) -> list[tuple[str, str]]:
    return [
        (event.extra.get("authenticator_type"), event.extra.get("change"))
        for event in AuditEvent.objects.filter(
            type=AuditEvent.Type.MFA_CHANGED, subject=user
        ).order_by("id")
    ]


def _shown_codes(html: str) -> list[str]:
    """The codes listed on the recovery codes page: the <li> items of <ul id="recovery_codes">."""
    match = re.search(r'<ul[^>]*id="recovery_codes"[^>]*>(.*?)</ul>', html, re.S)
    return (
        [code.strip() for code in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]
        if match
        else []
    )


# --- Enrolment ----------------------------------------------------------------------------------


# allauth sends its factor signals (our audit rows) on commit, inside the request: these tests
# commit for real.
@pytest.mark.django_db(transaction=True)
def test_totp_enrolment_shows_a_qr_code_and_the_key_and_needs_a_valid_code(user, password):
    client = Client()
    sign_in(client, "alice", password)

    page = client.get(TOTP_ACTIVATE_URL)
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    secret = page.context["form"].secret
    qr = re.search(r'<img class="qr" src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert qr, "the QR code is an image (no inline SVG styles, CSP-safe)"
    assert b"<svg" in base64.b64decode(qr.group(1))
    assert f'id="authenticator_secret">{secret}<' in html, "the key to type by hand"

    # A wrong code does not turn it on.
    refused = client.post(TOTP_ACTIVATE_URL, {"code": other_totp_code(secret)})
    assert refused.status_code == HTTPStatus.OK
    assert "Incorrect code" in refused.content.decode()
    assert not Authenticator.objects.filter(user=user).exists()

    activated = client.post(TOTP_ACTIVATE_URL, {"code": totp_code(secret)})
    assert activated.status_code == HTTPStatus.FOUND
    assert activated["Location"] == RECOVERY_CODES_URL
    assert set(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == {
        Authenticator.Type.TOTP,
        Authenticator.Type.RECOVERY_CODES,
    }
    assert _mfa_events(user) == [("totp", "added"), ("recovery_codes", "added")]


@pytest.mark.django_db(transaction=True)
def test_recovery_codes_are_shown_once_and_can_be_made_again(user, password):
    client = Client()
    sign_in(client, "alice", password)
    secret = client.get(TOTP_ACTIVATE_URL).context["form"].secret
    client.post(TOTP_ACTIVATE_URL, {"code": totp_code(secret)})

    first_view = _shown_codes(client.get(RECOVERY_CODES_URL).content.decode())
    assert len(first_view) == 10
    assert all(re.fullmatch(r"\d{8}", code) for code in first_view)
    second_view = client.get(RECOVERY_CODES_URL).content.decode()
    assert _shown_codes(second_view) == [], "never shown twice"
    assert not any(code in second_view for code in first_view)
    assert client.get("/accounts/2fa/recovery-codes/download/").status_code in (
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
    )

    # New codes replace the old ones, and are shown (once) again.
    assert client.post(GENERATE_CODES_URL, {}).status_code == HTTPStatus.FOUND
    new_codes = _shown_codes(client.get(RECOVERY_CODES_URL).content.decode())
    assert len(new_codes) == 10
    assert not set(new_codes) & set(first_view)
    assert ("recovery_codes", "reset") in _mfa_events(user)


# --- Sign-in with a second factor ---------------------------------------------------------------


def test_sign_in_asks_for_the_code_and_a_valid_one_lets_the_user_in(user, password):
    secret = enable_totp(user)
    client = Client()
    first = sign_in(client, "alice", password)
    assert first["Location"] == MFA_AUTHENTICATE_URL
    assert not is_signed_in(client), "the password alone is not enough"
    assert client.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND

    done = client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})
    assert done.status_code == HTTPStatus.FOUND
    assert done["Location"] == OVERVIEW_URL
    assert is_signed_in(client)


def test_a_wrong_code_is_refused_and_audited(user, password):
    secret = enable_totp(user)
    client = Client()
    sign_in(client, "alice", password)
    refused = client.post(MFA_AUTHENTICATE_URL, {"code": other_totp_code(secret)})
    assert refused.status_code == HTTPStatus.OK
    assert "Incorrect code" in refused.content.decode()
    assert not is_signed_in(client)
    event = AuditEvent.objects.get(type=AuditEvent.Type.LOGIN_FAILED, subject=user)
    assert event.extra["reason"] == "bad_second_factor"
    user.refresh_from_db()
    assert user.failed_login_count == 1
    # Bad input is a form error, never a 500.
    for code in ["", "x" * 5000, "12345\x00", "１２３４５６"]:
        response = client.post(MFA_AUTHENTICATE_URL, {"code": code})
        assert response.status_code == HTTPStatus.OK, code
    assert client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)}).status_code == 302


def test_a_code_used_once_is_refused_the_second_time(user, password):
    secret = enable_totp(user)
    code = totp_code(secret)
    first = Client()
    sign_in(first, "alice", password)
    assert first.post(MFA_AUTHENTICATE_URL, {"code": code}).status_code == HTTPStatus.FOUND

    second = Client()
    sign_in(second, "alice", password)
    replay = second.post(MFA_AUTHENTICATE_URL, {"code": code})
    assert replay.status_code == HTTPStatus.OK
    assert "Incorrect code" in replay.content.decode()
    assert not is_signed_in(second)


def test_a_recovery_code_signs_in_once(user, password):
    enable_totp(user)
    client = Client()
    client.force_login(user)
    client.post(GENERATE_CODES_URL, {})
    codes = _shown_codes(client.get(RECOVERY_CODES_URL).content.decode())
    assert len(codes) == 10

    browser = Client()
    sign_in(browser, "alice", password)
    assert browser.post(MFA_AUTHENTICATE_URL, {"code": codes[0]}).status_code == HTTPStatus.FOUND
    assert is_signed_in(browser)

    again = Client()
    sign_in(again, "alice", password)
    replay = again.post(MFA_AUTHENTICATE_URL, {"code": codes[0]})
    assert replay.status_code == HTTPStatus.OK
    assert not is_signed_in(again)
    assert again.post(MFA_AUTHENTICATE_URL, {"code": codes[1]}).status_code == HTTPStatus.FOUND
    rc = Authenticator.objects.get(user=user, type=Authenticator.Type.RECOVERY_CODES)
    assert len(rc.wrap().get_unused_codes()) == 8


# --- The lock counts wrong codes ----------------------------------------------------------------


def test_wrong_codes_lock_the_account_like_wrong_passwords(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 3
    secret = enable_totp(user)
    client = Client()
    sign_in(client, "alice", password)
    for _ in range(3):
        assert (
            client.post(MFA_AUTHENTICATE_URL, {"code": other_totp_code(secret)}).status_code == 200
        )
    user.refresh_from_db()
    assert user.is_locked()
    locked = AuditEvent.objects.get(type=AuditEvent.Type.ACCOUNT_LOCKED, subject=user)
    assert locked.extra["failures"] == 3

    # The right code no longer helps, and the password does not start a new attempt.
    refused = client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)})
    assert refused.status_code == HTTPStatus.OK
    assert "locked" in refused.content.decode()
    assert not is_signed_in(client)
    fresh = Client()
    response = sign_in(fresh, "alice", password)
    assert response.status_code == HTTPStatus.OK, "refused at the password step while locked"
    assert not is_signed_in(fresh)


def test_a_right_code_clears_the_failure_count(user, password):
    secret = enable_totp(user)
    client = Client()
    sign_in(client, "alice", password)
    client.post(MFA_AUTHENTICATE_URL, {"code": other_totp_code(secret)})
    user.refresh_from_db()
    assert user.failed_login_count == 1
    assert client.post(MFA_AUTHENTICATE_URL, {"code": totp_code(secret)}).status_code == 302
    user.refresh_from_db()
    assert user.failed_login_count == 0


def test_allauths_own_code_rate_limit_stays_on(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 100  # only allauth's limit (5 per 5 minutes per user)
    secret = enable_totp(user)
    client = Client()
    sign_in(client, "alice", password)
    answers = [
        client.post(MFA_AUTHENTICATE_URL, {"code": other_totp_code(secret)}).content.decode()
        for _ in range(6)
    ]
    assert "Too many failed login attempts" in answers[-1]
    assert "Too many failed login attempts" not in answers[0]


# --- What the ID token says (RFC 8176 amr) ------------------------------------------------------


@pytest.mark.spec("RFC 8176", "2")
def test_amr_says_password_only_without_a_second_factor(user, password, app):
    browser = Client()
    sign_in(browser, "alice", password)
    claims = id_token_claims(obtain_tokens(browser, app))
    assert claims["amr"] == ["pwd"]


@pytest.mark.spec("RFC 8176", "2")
def test_amr_says_password_and_one_time_code_after_totp(user, password, app):
    secret = enable_totp(user)
    browser = Client()
    assert sign_in_with_totp(browser, "alice", password, secret).status_code == 302
    claims = id_token_claims(obtain_tokens(browser, app))
    assert claims["amr"] == ["mfa", "otp", "pwd"]


# --- acr and acr_values (OIDC Core §2, §3.1.2.1) ------------------------------------------------

MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


@pytest.mark.spec("OpenID Connect Core 1.0", "2")
def test_acr_is_absent_for_a_password_and_multi_factor_after_a_code(user, password, app):
    browser = Client()
    sign_in(browser, "alice", password)
    assert "acr" not in id_token_claims(obtain_tokens(browser, app))
    secret = enable_totp(user)
    browser = Client()
    sign_in_with_totp(browser, "alice", password, secret)
    assert id_token_claims(obtain_tokens(browser, app))["acr"] == MULTI_FACTOR


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_acr_values_asking_for_a_second_factor_steps_a_password_session_up(user, password, app):
    from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params

    secret = enable_totp(user)
    browser = Client()
    browser.force_login(user)  # a password-only session
    # Positive path: without acr_values the app gets a code at once (after consent).
    plain = browser.get(AUTHORIZE_URL, authorization_params(app))
    assert plain.status_code == HTTPStatus.OK  # the consent screen, no step-up
    params = authorization_params(app, acr_values=f"urn:unknown {MULTI_FACTOR}")
    step_up = browser.get(AUTHORIZE_URL, params)
    assert step_up.status_code == HTTPStatus.FOUND
    assert step_up["Location"].startswith("/accounts/2fa/reauthenticate/?next=")
    back = browser.post(step_up["Location"], {"code": totp_code(secret)})
    assert back.status_code == HTTPStatus.FOUND
    assert back["Location"].startswith("/o/authorize/?")
    tokens = obtain_tokens(browser, app)
    claims = id_token_claims(tokens)
    assert claims["acr"] == MULTI_FACTOR
    assert claims["amr"] == ["mfa", "otp", "pwd"]


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.1")
def test_unknown_acr_values_are_ignored(user, app):
    from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params

    browser = Client()
    browser.force_login(user)
    response = browser.get(AUTHORIZE_URL, authorization_params(app, acr_values="urn:gold"))
    assert response.status_code == HTTPStatus.OK, "the consent screen, no step-up"


@pytest.mark.spec("OpenID Connect Core 1.0", "5.5.1.1")
def test_acr_values_are_voluntary_for_a_user_without_a_second_factor(user, app):
    from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params

    browser = Client()
    browser.force_login(user)
    response = browser.get(AUTHORIZE_URL, authorization_params(app, acr_values=MULTI_FACTOR))
    assert response.status_code == HTTPStatus.OK, "the consent screen: no step-up possible"
    tokens = obtain_tokens(browser, app)
    assert "acr" not in id_token_claims(tokens), "the app learns no second factor was used"


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_with_acr_values_and_a_password_session_is_login_required(user, app):
    from oauth_clients.models import Consent
    from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query

    enable_totp(user)
    Consent.objects.create(user=user, client=app, scopes="openid profile email")
    browser = Client()
    browser.force_login(user)
    silent = authorization_params(app, prompt="none")
    assert redirect_query(browser.get(AUTHORIZE_URL, silent), app.redirect_uris)["code"]
    asked = authorization_params(app, prompt="none", acr_values=MULTI_FACTOR)
    error = redirect_query(browser.get(AUTHORIZE_URL, asked), app.redirect_uris)
    assert error["error"] == "login_required"


@pytest.mark.django_db(transaction=True)
def test_turning_the_authenticator_app_off_is_audited(user, password):
    secret = enable_totp(user)
    client = Client()
    sign_in_with_totp(client, "alice", password, secret)
    assert client.get("/accounts/2fa/totp/deactivate/").status_code == HTTPStatus.OK
    assert client.post("/accounts/2fa/totp/deactivate/", {}).status_code == HTTPStatus.FOUND
    assert not Authenticator.objects.filter(user=user).exists()
    assert ("totp", "removed") in _mfa_events(user)
    event = AuditEvent.objects.get(type=AuditEvent.Type.MFA_CHANGED, extra__change="removed")
    assert (event.actor, event.subject) == (user, user)
    # The next sign-in needs the password only.
    assert sign_in(Client(), "alice", password)["Location"] == OVERVIEW_URL
