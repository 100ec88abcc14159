"""allauth's session activity tracking, throttled (accounts.middleware.SessionActivityMiddleware).

The settings still list allauth's own middleware; these tests swap ours in for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from allauth.usersessions.signals import session_client_changed
from django.test import Client
from django.utils import timezone

from accounts.sessions import ACTIVITY_INTERVAL_SECONDS
from tests.accounts.conftest import OVERVIEW_URL, sign_in

pytestmark = pytest.mark.django_db

ALLAUTH_MIDDLEWARE = "allauth.usersessions.middleware.UserSessionsMiddleware"
OURS = "accounts.middleware.SessionActivityMiddleware"


@pytest.fixture(autouse=True)
def _throttled_tracking(settings):
    # The settings use ours in allauth's place (never both: allauth's would write every time).
    assert OURS in settings.MIDDLEWARE
    assert ALLAUTH_MIDDLEWARE not in settings.MIDDLEWARE
    assert settings.USERSESSIONS_TRACK_ACTIVITY is True


def _signed_in(password: str, **headers: str) -> Client:
    browser = Client(**headers)
    assert sign_in(browser, "alice", password).status_code == HTTPStatus.FOUND
    return browser


def _tracking_queries(captured) -> list[str]:
    """allauth's refresh of this session's row: found by its key, then rewritten (the overview
    page lists the user's sessions too, by user)."""
    return [
        q["sql"]
        for q in captured
        if '"usersessions_usersession"."session_key" =' in q["sql"]
        or q["sql"].startswith('UPDATE "usersessions_usersession"')
    ]


def test_sign_in_records_the_session_and_the_next_request_leaves_it_alone(
    user, password, django_assert_max_num_queries
):
    browser = _signed_in(password, REMOTE_ADDR="198.51.100.7")
    row = UserSession.objects.get(session_key=browser.session.session_key)
    assert row.ip == "198.51.100.7"

    with django_assert_max_num_queries(20) as captured:
        assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    assert _tracking_queries(captured) == []


def _last_seen(browser: Client) -> datetime:
    return UserSession.objects.get(session_key=browser.session.session_key).last_seen_at


def _visit_after_the_interval(browser: Client, visits: int = 1) -> datetime:
    """Open the overview `visits` times once the tracking interval has passed; returns when."""
    later = timezone.now() + timedelta(seconds=ACTIVITY_INTERVAL_SECONDS + 5)
    with time_machine.travel(later, tick=False):
        for _ in range(visits):
            assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    return later


def test_activity_is_recorded_again_after_the_interval(user, password):
    browser = _signed_in(password)
    signed_in_at = _last_seen(browser)

    later = _visit_after_the_interval(browser, visits=2)

    assert _last_seen(browser) == later
    assert _last_seen(browser) > signed_in_at


@pytest.mark.parametrize(
    "change",
    [{"REMOTE_ADDR": "203.0.113.9"}, {"HTTP_USER_AGENT": "Another browser"}],
    ids=["address", "browser"],
)
def test_a_new_address_or_browser_is_recorded_at_once(user, password, change):
    browser = _signed_in(password, REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Firefox")
    changes = []

    def receiver(sender, request, from_session, to_session, **kwargs):
        changes.append((from_session.ip, to_session.ip, to_session.user_agent))

    session_client_changed.connect(receiver)
    try:
        headers = {"REMOTE_ADDR": "198.51.100.7", "HTTP_USER_AGENT": "Firefox", **change}
        assert browser.get(OVERVIEW_URL, **headers).status_code == HTTPStatus.OK
    finally:
        session_client_changed.disconnect(receiver)

    row = UserSession.objects.get(session_key=browser.session.session_key)
    assert (row.ip, row.user_agent) == (headers["REMOTE_ADDR"], headers["HTTP_USER_AGENT"])
    assert changes == [("198.51.100.7", headers["REMOTE_ADDR"], headers["HTTP_USER_AGENT"])]


def test_anonymous_requests_are_not_tracked(client, django_assert_num_queries):
    client.get("/accounts/login/")  # the branding, read once into the cache
    with django_assert_num_queries(0):
        assert client.get("/accounts/login/").status_code == HTTPStatus.OK
    assert not UserSession.objects.exists()


def test_tracking_switched_off_records_nothing_after_sign_in(user, password, settings):
    settings.USERSESSIONS_TRACK_ACTIVITY = False
    browser = _signed_in(password)
    signed_in_at = _last_seen(browser)
    _visit_after_the_interval(browser)
    assert _last_seen(browser) == signed_in_at
