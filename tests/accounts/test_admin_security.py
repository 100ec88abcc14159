"""Administrator actions on a user's security: reset factors, unlock, sign out everywhere, revoke
all tokens — each audited with the acting administrator; no secret on any admin screen."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    MFA_AUTHENTICATE_URL,
    OVERVIEW_URL,
    enable_totp,
    is_signed_in,
    obtain_tokens,
    sign_in,
    sign_in_with_totp,
    totp_code,
    userinfo_status,
)

pytestmark = pytest.mark.django_db

USERS_URL = "/admin/accounts/user/"


@pytest.fixture
def admin_browser(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _action(admin_browser: Client, action: str, *users):
    return admin_browser.post(
        USERS_URL,
        {"action": action, "_selected_action": [str(u.pk) for u in users], "index": 0},
    )


def test_reset_factors_removes_every_authenticator_and_is_audited(
    admin_browser, admin_user, user, password
):
    secret = enable_totp(user)
    assert sign_in(Client(), "alice", password)["Location"] == MFA_AUTHENTICATE_URL  # positive
    response = _action(admin_browser, "reset_factors", user)
    assert response.status_code == HTTPStatus.FOUND
    assert not Authenticator.objects.filter(user=user).exists()
    assert sign_in(Client(), "alice", password)["Location"] == OVERVIEW_URL
    event = AuditEvent.objects.get(type=AuditEvent.Type.MFA_CHANGED)
    assert (event.actor, event.subject) == (admin_user, user)
    assert event.extra["change"] == "reset_by_admin"
    assert event.extra["authenticator_types"] == ["totp"]
    assert secret not in str(event.extra)


def test_an_admin_does_not_reset_their_own_factors(admin_browser, admin_user):
    enable_totp(admin_user)
    _action(admin_browser, "reset_factors", admin_user)
    assert Authenticator.objects.filter(user=admin_user).exists()


def test_sign_out_everywhere_ends_sessions_and_their_tokens(admin_browser, admin_user, user, app):
    from django.conf import settings

    browser = Client()
    browser.force_login(user)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    tokens = obtain_tokens(browser, app)
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK

    _action(admin_browser, "sign_out_everywhere", user)

    assert not is_signed_in(browser)
    assert not UserSession.objects.filter(user=user).exists()
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert is_signed_in(admin_browser), "the acting admin's own session is untouched"
    event = AuditEvent.objects.get(type=AuditEvent.Type.SESSIONS_ENDED)
    assert (event.actor, event.subject) == (admin_user, user)
    assert event.extra["sessions_ended"] == 1
    assert event.extra["reason"] == "admin_signed_out"
    assert settings.SESSION_ENGINE.endswith("db")  # the sweep below relies on it
    # An untracked session (no request since sign-in) is found by the sweep too.
    silent = Client()
    silent.force_login(user)
    _action(admin_browser, "sign_out_everywhere", user)
    assert not is_signed_in(silent)


def test_revoke_all_tokens_keeps_browser_sessions(admin_browser, admin_user, user, app):
    browser = Client()
    browser.force_login(user)
    tokens = obtain_tokens(browser, app)

    _action(admin_browser, "revoke_all_tokens", user)

    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(type=AuditEvent.Type.TOKEN_REVOKED)
    assert (event.actor, event.subject) == (admin_user, user)
    assert event.extra["refresh_tokens_revoked"] == 1


def test_unlock_lets_a_user_locked_by_wrong_codes_in(admin_browser, admin_user, user, password):
    secret = enable_totp(user)
    user.locked_until = timezone.now() + timedelta(minutes=15)
    user.save()
    assert sign_in(Client(), "alice", password).status_code == HTTPStatus.OK  # refused
    _action(admin_browser, "unlock_users", user)
    client = Client()
    assert sign_in_with_totp(client, "alice", password, secret).status_code == HTTPStatus.FOUND
    assert is_signed_in(client)
    event = AuditEvent.objects.get(type=AuditEvent.Type.ACCOUNT_UNLOCKED)
    assert (event.actor, event.subject) == (admin_user, user)


def test_no_second_factor_secret_on_admin_screens(admin_browser, user):
    secret = enable_totp(user)
    user_page = admin_browser.get(f"{USERS_URL}{user.pk}/change/").content.decode()
    assert "TOTP Authenticator" in user_page
    assert secret not in user_page
    listing = admin_browser.get("/admin/mfa/authenticator/")
    assert listing.status_code == HTTPStatus.OK
    authenticator = Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP)
    detail = admin_browser.get(f"/admin/mfa/authenticator/{authenticator.pk}/change/")
    assert detail.status_code == HTTPStatus.OK
    assert secret not in detail.content.decode()
    assert totp_code(secret) not in detail.content.decode()
    # Read-only: no edit, no delete outside the audited user action.
    assert (
        admin_browser.post(
            f"/admin/mfa/authenticator/{authenticator.pk}/delete/", {"post": "yes"}
        ).status_code
        == HTTPStatus.FORBIDDEN
    )
    assert Authenticator.objects.filter(pk=authenticator.pk).exists()
    sessions = admin_browser.get("/admin/usersessions/usersession/")
    assert sessions.status_code == HTTPStatus.OK


@pytest.mark.staff_mfa
def test_the_actions_work_for_an_admin_who_used_a_second_factor(admin_user, user, password):
    admin_secret = enable_totp(admin_user)
    enable_totp(user)
    admin_browser = Client()
    sign_in_with_totp(admin_browser, "root", password, admin_secret)
    assert _action(admin_browser, "reset_factors", user).status_code == HTTPStatus.FOUND
    assert not Authenticator.objects.filter(user=user).exists()
