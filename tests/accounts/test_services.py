"""User services: deactivation ends sessions and OAuth tokens at once; every change is audited."""

from __future__ import annotations

import secrets
from datetime import timedelta
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)

from accounts import services
from accounts.models import AuditEvent
from tests.accounts.conftest import OVERVIEW_URL, sign_in

pytestmark = pytest.mark.django_db

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
Grant = get_grant_model()


@pytest.fixture
def app(db):
    return get_application_model().objects.create(
        name="Wiki",
        client_id="wiki",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris="https://wiki.example.com/cb",
        algorithm="RS256",
    )


def _tokens_for(user, app) -> tuple[str, str]:
    access_value, refresh_value = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    access = AccessToken.objects.create(
        user=user,
        application=app,
        token=access_value,
        scope="openid profile",
        expires=timezone.now() + timedelta(minutes=10),
    )
    RefreshToken.objects.create(
        user=user, application=app, token=refresh_value, access_token=access
    )
    Grant.objects.create(
        user=user,
        application=app,
        code=secrets.token_urlsafe(16),
        expires=timezone.now() + timedelta(minutes=1),
        redirect_uri="https://wiki.example.com/cb",
        scope="openid",
    )
    return access_value, refresh_value


def _userinfo(access_value: str):
    return Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_value}")


def test_deactivate_user_ends_sessions_and_makes_tokens_unusable_at_once(
    user, password, admin_user, app
):
    browser = Client()
    sign_in(browser, "alice", password)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    session_key = browser.session.session_key
    access_value, _ = _tokens_for(user, app)
    assert _userinfo(access_value).status_code == HTTPStatus.OK  # positive path

    services.deactivate_user(user=user, actor=admin_user)

    user.refresh_from_db()
    assert not user.is_active
    assert not Session.objects.filter(session_key=session_key).exists()
    assert not UserSession.objects.filter(user=user).exists()
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert _userinfo(access_value).status_code == HTTPStatus.UNAUTHORIZED
    assert not AccessToken.objects.filter(user=user).exists()
    assert RefreshToken.objects.filter(user=user, revoked__isnull=True).count() == 0
    assert RefreshToken.objects.filter(user=user).count() == 1, "kept, revoked, for replay checks"
    assert not Grant.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_DEACTIVATED)
    assert (event.actor, event.subject) == (admin_user, user)
    assert event.extra == {
        "sessions_ended": 1,
        "access_tokens_deleted": 1,
        "refresh_tokens_revoked": 1,
        "codes_deleted": 1,
    }


def test_deactivate_user_also_ends_sessions_the_tracker_has_not_seen(user, admin_user):
    browser = Client()
    browser.force_login(user)  # no request made since: usersessions has no row yet
    session_key = browser.session.session_key
    assert not UserSession.objects.filter(user=user).exists()

    services.deactivate_user(user=user, actor=admin_user)

    assert not Session.objects.filter(session_key=session_key).exists()


def test_deactivate_user_leaves_other_users_alone(user, password, admin_user, app):
    bob = type(user).objects.create_user("bob", "bob@example.com", password)
    bob_browser = Client()
    sign_in(bob_browser, "bob", password)
    bob_access, _ = _tokens_for(bob, app)

    services.deactivate_user(user=user, actor=admin_user)

    assert bob_browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    assert _userinfo(bob_access).status_code == HTTPStatus.OK


def test_activate_user_lets_them_sign_in_again(user, password, admin_user):
    services.deactivate_user(user=user, actor=admin_user)
    assert sign_in(Client(), "alice", password)["Location"] == "/accounts/inactive/"

    services.activate_user(user=user, actor=admin_user)

    assert sign_in(Client(), "alice", password)["Location"] == OVERVIEW_URL
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.USER_ACTIVATED, actor=admin_user, subject=user
    ).exists()


@pytest.mark.parametrize(
    ("service", "flag", "granted", "revoked"),
    [
        (services.set_staff, "is_staff", "STAFF_GRANTED", "STAFF_REVOKED"),
        (services.set_superuser, "is_superuser", "SUPERUSER_GRANTED", "SUPERUSER_REVOKED"),
    ],
)
def test_grant_and_revoke_are_audited_with_the_acting_admin(
    user, admin_user, service, flag, granted, revoked
):
    service(user=user, actor=admin_user, **{flag: True})
    user.refresh_from_db()
    assert getattr(user, flag) is True
    service(user=user, actor=admin_user, **{flag: False})
    user.refresh_from_db()
    assert getattr(user, flag) is False

    types = list(
        AuditEvent.objects.filter(subject=user, actor=admin_user)
        .order_by("id")
        .values_list("type", flat=True)
    )
    assert getattr(AuditEvent.Type, granted) in types
    assert getattr(AuditEvent.Type, revoked) in types


def test_granting_superuser_makes_staff_too(user, admin_user):
    services.set_superuser(user=user, is_superuser=True, actor=admin_user)
    user.refresh_from_db()
    assert user.is_staff
    assert user.is_superuser


def test_record_trusted_email_replaces_the_old_address(user):
    user.email = "alice.new@example.com"
    user.save()
    services.record_trusted_email(user=user, previous_email="alice@example.com")

    addresses = list(EmailAddress.objects.filter(user=user).values_list("email", "verified"))
    assert addresses == [("alice.new@example.com", True)]


def test_record_trusted_email_never_steals_another_accounts_address(user):
    bob = type(user).objects.create_user("bob", "alice@example.com", "pw")
    assert not EmailAddress.objects.filter(user=bob, verified=True).exists()
    assert EmailAddress.objects.get(email="alice@example.com").user == user


def test_delete_user_is_audited_and_ends_sessions(user, password, admin_user):
    browser = Client()
    sign_in(browser, "alice", password)
    services.delete_user(user=user, actor=admin_user)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_DELETED)
    assert event.subject is None
    assert event.subject_repr == "alice"
