"""Active sessions: the list, signing one out or all others, and the tokens those sessions got."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    OVERVIEW_URL,
    introspect_active,
    is_signed_in,
    obtain_tokens,
    refresh_status,
    sign_in,
    userinfo_status,
)

pytestmark = pytest.mark.django_db

SESSIONS_URL = "/accounts/sessions/"
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def _browser(password: str, user_agent: str, ip: str) -> Client:
    browser = Client(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK  # tracked by usersessions
    return browser


def _assert_tokens_work(app, tokens: dict) -> None:
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK
    assert introspect_active(app, tokens["access_token"])
    assert introspect_active(app, tokens["refresh_token"])


def _assert_tokens_dead(app, tokens: dict) -> None:
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not introspect_active(app, tokens["access_token"])
    assert not introspect_active(app, tokens["refresh_token"])
    assert refresh_status(app, tokens["refresh_token"]) == HTTPStatus.BAD_REQUEST


def test_sessions_page_lists_each_browser_with_device_ip_and_last_activity(user, password):
    laptop = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    _browser(password, SAFARI_IPHONE, "203.0.113.9")

    page = laptop.get(SESSIONS_URL)
    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "Firefox on Windows" in html
    assert "Safari on iPhone" in html
    assert "198.51.100.7" in html
    assert "203.0.113.9" in html
    assert "Last activity" in html
    assert html.count("This browser") == 1
    # One "Sign out" button per other session, and "all other sessions".
    other = UserSession.objects.exclude(session_key=laptop.session.session_key).get()
    assert f'action="/account/sessions/{other.pk}/end/"' in html
    assert "Sign out all other sessions" in html


def test_signing_out_another_session_ends_it_and_its_tokens(user, password, app):
    laptop = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    phone = _browser(password, SAFARI_IPHONE, "203.0.113.9")
    phone_tokens = obtain_tokens(phone, app)
    laptop_tokens = obtain_tokens(laptop, app)
    _assert_tokens_work(app, phone_tokens)  # positive path
    phone_session = UserSession.objects.get(session_key=phone.session.session_key)

    response = laptop.post(f"/account/sessions/{phone_session.pk}/end/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == SESSIONS_URL
    assert not is_signed_in(phone)
    assert phone.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert not UserSession.objects.filter(pk=phone_session.pk).exists()
    _assert_tokens_dead(app, phone_tokens)
    # This browser and what it obtained are untouched.
    assert laptop.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    _assert_tokens_work(app, laptop_tokens)
    event = AuditEvent.objects.get(type=AuditEvent.Type.SESSIONS_ENDED)
    assert (event.actor, event.subject) == (user, user)
    assert event.extra["sessions_ended"] == 1
    assert event.extra["refresh_tokens_revoked"] == 1
    assert event.extra["access_tokens_deleted"] == 1
    assert event.extra["reason"] == "signed_out_by_user"


def test_sign_out_all_other_sessions(user, password, app):
    laptop = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    phone = _browser(password, SAFARI_IPHONE, "203.0.113.9")
    tablet = _browser(password, FIREFOX_WINDOWS, "192.0.2.44")
    phone_tokens, tablet_tokens = obtain_tokens(phone, app), obtain_tokens(tablet, app)
    laptop_tokens = obtain_tokens(laptop, app)

    response = laptop.post(SESSIONS_URL)  # allauth's own form, our adapter underneath

    assert response.status_code == HTTPStatus.FOUND
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(tablet)
    assert list(UserSession.objects.values_list("session_key", flat=True)) == [
        laptop.session.session_key
    ]
    _assert_tokens_dead(app, phone_tokens)
    _assert_tokens_dead(app, tablet_tokens)
    _assert_tokens_work(app, laptop_tokens)
    event = AuditEvent.objects.get(type=AuditEvent.Type.SESSIONS_ENDED)
    assert event.extra["sessions_ended"] == 2


def test_signing_out_this_session_from_the_list_signs_out(user, password):
    laptop = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    this = UserSession.objects.get(session_key=laptop.session.session_key)
    response = laptop.post(f"/account/sessions/{this.pk}/end/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/login/"
    assert laptop.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND


def test_nobody_ends_someone_elses_session(user, password):
    alice = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    get_user_model().objects.create_user("mallory", "mallory@example.com", password)
    mallory = Client()
    sign_in(mallory, "mallory", password)
    alice_session = UserSession.objects.get(session_key=alice.session.session_key)
    # Positive path for mallory's own list, then the attack.
    assert mallory.get(SESSIONS_URL).status_code == HTTPStatus.OK
    response = mallory.post(f"/account/sessions/{alice_session.pk}/end/")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert is_signed_in(alice)
    assert alice.get(OVERVIEW_URL).status_code == HTTPStatus.OK


def test_ending_a_session_needs_a_post_with_a_csrf_token(user, password):
    laptop = _browser(password, FIREFOX_WINDOWS, "198.51.100.7")
    phone = _browser(password, SAFARI_IPHONE, "203.0.113.9")
    target = UserSession.objects.get(session_key=phone.session.session_key)
    assert laptop.get(f"/account/sessions/{target.pk}/end/").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = laptop.cookies
    assert strict.post(f"/account/sessions/{target.pk}/end/").status_code == 403
    assert laptop.post("/account/sessions/999999/end/").status_code == HTTPStatus.NOT_FOUND
    assert is_signed_in(phone)


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.post("/account/sessions/1/end/")
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith("/accounts/login/")
