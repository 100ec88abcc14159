"""The record of each signed-in browser (allauth's `UserSession` row): written at sign-in by our
receiver in allauth's place, purged of ended sessions without reading every session at sign-in."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from importlib import import_module

import pytest
from allauth.account.signals import password_changed, user_logged_in
from allauth.usersessions import apps as usersessions_apps
from allauth.usersessions import signals as usersessions_signals
from allauth.usersessions.models import UserSession
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from accounts import receivers
from accounts.apps import UserSessionsConfig
from tests.accounts.conftest import LOGOUT_URL, is_signed_in, sign_in

pytestmark = pytest.mark.django_db

SESSIONS_URL = "/accounts/sessions/"


def _signed_in(password: str, **headers: str) -> Client:
    browser = Client(**headers)
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    return browser


def _ended(browser: Client) -> UserSession:
    """The browser's row, its session gone from the store (expired or evicted) behind its back."""
    row = UserSession.objects.get(session_key=browser.session.session_key)
    import_module(settings.SESSION_ENGINE).SessionStore().delete(row.session_key)
    return row


def _last_seen_long_ago(row: UserSession) -> None:
    """The row last refreshed longer ago than any session lives (SESSION_COOKIE_AGE)."""
    long_ago = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE + 60)
    UserSession.objects.filter(pk=row.pk).update(created_at=long_ago, last_seen_at=long_ago)


def test_our_receiver_records_sign_ins_in_place_of_allauths():
    assert isinstance(apps.get_app_config("usersessions"), UserSessionsConfig)
    assert apps.is_installed("allauth.usersessions")
    connected = [ref() for _key, ref, _sender_ref in user_logged_in.receivers]
    assert receivers._on_login_record_user_session in connected
    assert usersessions_signals.on_user_logged_in not in connected
    # allauth's other receivers stay (after a password change the session keeps its row).
    assert usersessions_signals.on_password_changed in [
        ref() for _key, ref, _sender_ref in password_changed.receivers
    ]


def test_an_allauth_that_no_longer_connects_its_receiver_stops_the_start(monkeypatch):
    # After an upgrade allauth may connect it elsewhere or not at all: never both receivers,
    # never a silent assumption.
    monkeypatch.setattr(usersessions_apps.UserSessionsConfig, "ready", lambda self: None)
    with pytest.raises(ImproperlyConfigured):
        apps.get_app_config("usersessions").ready()
    assert usersessions_signals.on_user_logged_in not in [
        ref() for _key, ref, _sender_ref in user_logged_in.receivers
    ]


def test_sign_in_records_the_session_as_allauth_did(user, password):
    agent = "Mozilla/5.0 " + "x" * 400
    before = timezone.now()
    browser = _signed_in(password, REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT=agent)

    row = UserSession.objects.get()
    assert row.session_key == browser.session.session_key
    assert row.user == user
    assert row.ip == "198.51.100.7"
    assert row.user_agent == agent[: UserSession._meta.get_field("user_agent").max_length]
    assert before <= row.created_at <= timezone.now()
    assert row.last_seen_at >= row.created_at
    assert row.data == {}


def test_sign_in_leaves_the_users_recent_sessions_to_the_sessions_page(user, password, monkeypatch):
    kept = _signed_in(password)
    gone = _ended(_signed_in(password))
    checked = []
    monkeypatch.setattr(UserSession, "purge", lambda row: checked.append(row.pk) or False)

    laptop = _signed_in(password)

    # No other session was read at sign-in (allauth read each one, at every sign-in).
    assert checked == []
    assert UserSession.objects.filter(user=user).count() == 3
    monkeypatch.undo()
    # The sessions page still drops the one that ended.
    assert laptop.get(SESSIONS_URL).status_code == HTTPStatus.OK
    assert not UserSession.objects.filter(pk=gone.pk).exists()
    assert set(UserSession.objects.values_list("session_key", flat=True)) == {
        kept.session.session_key,
        laptop.session.session_key,
    }


def test_sign_in_purges_the_users_sessions_that_may_have_expired(user, password):
    expired = _ended(_signed_in(password))
    _last_seen_long_ago(expired)
    # Idle that long, yet its session was saved since (e.g. kept signed in after a password
    # change elsewhere): the store decides, not the age.
    alive_browser = _signed_in(password)
    alive = UserSession.objects.get(session_key=alive_browser.session.session_key)
    _last_seen_long_ago(alive)

    _signed_in(password)

    assert not UserSession.objects.filter(pk=expired.pk).exists()
    assert UserSession.objects.filter(pk=alive.pk).exists()
    assert is_signed_in(alive_browser)


def test_sign_out_removes_only_this_session_from_the_list(user, password):
    laptop = _signed_in(password)
    phone = _signed_in(password)
    laptop_key = laptop.session.session_key

    assert laptop.post(LOGOUT_URL).status_code == HTTPStatus.FOUND

    assert not UserSession.objects.filter(session_key=laptop_key).exists()
    assert UserSession.objects.filter(session_key=phone.session.session_key).exists()
    assert is_signed_in(phone)
