"""Password change, reset by email, forced reset and the password rules."""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from allauth.usersessions.models import UserSession
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import AuditEvent
from tests.accounts.conftest import (
    CHANGE_URL,
    OVERVIEW_URL,
    RESET_URL,
    introspect_active,
    is_signed_in,
    last_link,
    obtain_tokens,
    refresh_status,
    sign_in,
    userinfo_status,
)

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 42"


def _signed_in_client(login: str, password: str) -> Client:
    client = Client()
    assert sign_in(client, login, password).status_code == HTTPStatus.FOUND
    assert client.get(OVERVIEW_URL).status_code == HTTPStatus.OK  # tracked by usersessions
    return client


def _change(client: Client, old: str, new: str, **extra: str):
    data = {"oldpassword": old, "password1": new, "password2": new, **extra}
    return client.post(CHANGE_URL, data)


def _request_reset(client: Client, email: str):
    client.get(RESET_URL)
    return client.post(RESET_URL, {"email": email})


def _set_password_from_link(client: Client, link: str, new: str, *, sign_out: bool = True):
    """Follow the emailed link like a browser: GET it, then POST the new password (with the
    "sign out everywhere" box as the user left it; ticked by default)."""
    path = link.replace("http://testserver", "")
    form_page = client.get(path, follow=True)
    data = {"password1": new, "password2": new}
    if sign_out:
        data["sign_out_others"] = "on"
    return form_page, client.post(
        form_page.redirect_chain[-1][0] if form_page.redirect_chain else path, data
    )


# --- Change -------------------------------------------------------------------------------------


def test_password_change_keeps_this_session_and_ends_the_others(user, password):
    this = _signed_in_client("alice", password)
    other = _signed_in_client("alice", password)
    other_key = other.session.session_key

    response = _change(this, password, NEW_PASSWORD, sign_out_others="on")

    assert response.status_code == HTTPStatus.FOUND
    assert this.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    assert other.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert not Session.objects.filter(session_key=other_key).exists()
    assert not UserSession.objects.filter(session_key=other_key).exists()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED, subject=user)
    assert event.actor == user
    assert event.extra["sessions_ended"] >= 1


def test_password_change_needs_the_current_password(user, password):
    client = _signed_in_client("alice", password)
    response = _change(client, "not the password", NEW_PASSWORD)
    assert response.status_code == HTTPStatus.OK
    user.refresh_from_db()
    assert user.check_password(password)
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.PASSWORD_CHANGED).exists()


@pytest.mark.parametrize(
    ("weak", "message"),
    [
        ("short", "too short"),
        ("q1w2e3r4t5y6", "too common"),
        ("aliceliddell1", "too similar"),
        ("alice@example.com", "too similar"),
        ("123456789012345", "entirely numeric"),
    ],
)
def test_weak_passwords_are_refused_with_a_form_error(user, password, weak, message):
    client = _signed_in_client("alice", password)
    # Positive path is the change test above; here the same form refuses.
    response = _change(client, password, weak)
    assert response.status_code == HTTPStatus.OK
    assert message in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(password)


def test_password_change_offers_sign_out_elsewhere_ticked(user, password):
    client = _signed_in_client("alice", password)
    html = client.get(CHANGE_URL).content.decode()
    box = re.search(r"<input[^>]*name=\"sign_out_others\"[^>]*>", html)
    assert box, "the question is on the form"
    assert "checked" in box.group(0)
    assert "Sign out everywhere else" in html


def test_password_change_without_signing_out_keeps_other_sessions_and_their_apps(
    user, password, app
):
    this = _signed_in_client("alice", password)
    other = _signed_in_client("alice", password)
    other_tokens = obtain_tokens(other, app)

    assert _change(this, password, NEW_PASSWORD).status_code == HTTPStatus.FOUND

    assert this.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    assert other.get(OVERVIEW_URL).status_code == HTTPStatus.OK, "still signed in"
    assert userinfo_status(other_tokens["access_token"]) == HTTPStatus.OK
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED)
    assert event.extra["signed_out_others"] is False
    assert event.extra["sessions_kept"] == 1
    assert event.extra["sessions_ended"] == 0


def test_password_change_signing_out_elsewhere_revokes_their_tokens_too(user, password, app):
    this = _signed_in_client("alice", password)
    other = _signed_in_client("alice", password)
    this_tokens, other_tokens = obtain_tokens(this, app), obtain_tokens(other, app)

    _change(this, password, NEW_PASSWORD, sign_out_others="on")

    assert other.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert userinfo_status(other_tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert not introspect_active(app, other_tokens["refresh_token"])
    assert userinfo_status(this_tokens["access_token"]) == HTTPStatus.OK, "this browser's apps"
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED)
    assert event.extra["signed_out_others"] is True
    assert event.extra["refresh_tokens_revoked"] == 1


def test_reset_form_asks_to_sign_out_everywhere_ticked_by_default(user):
    _request_reset(Client(), "alice@example.com")
    page = Client().get(last_link().replace("http://testserver", ""), follow=True)
    box = re.search(r"<input[^>]*name=\"sign_out_others\"[^>]*>", page.content.decode())
    assert box
    assert "checked" in box.group(0)
    assert "Sign out everywhere" in page.content.decode()


def test_reset_signing_out_everywhere_revokes_every_apps_tokens(user, password, app):
    old_session = _signed_in_client("alice", password)
    tokens = obtain_tokens(old_session, app)
    _request_reset(Client(), "alice@example.com")

    _set_password_from_link(Client(), last_link(), NEW_PASSWORD)

    assert old_session.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.UNAUTHORIZED
    assert refresh_status(app, tokens["refresh_token"]) == HTTPStatus.BAD_REQUEST
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_RESET)
    assert event.extra["signed_out_everywhere"] is True


def test_reset_without_signing_out_keeps_sessions_and_apps(user, password, app):
    old_session = _signed_in_client("alice", password)
    tokens = obtain_tokens(old_session, app)
    _request_reset(Client(), "alice@example.com")

    _, done = _set_password_from_link(Client(), last_link(), NEW_PASSWORD, sign_out=False)

    assert done.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert old_session.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    assert userinfo_status(tokens["access_token"]) == HTTPStatus.OK
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_RESET)
    assert event.extra["signed_out_everywhere"] is False
    assert event.extra["sessions_kept"] == 1


# --- Reset by email -----------------------------------------------------------------------------


def test_reset_link_works_once(user, password):
    old_session = _signed_in_client("alice", password)
    client = Client()
    response = _request_reset(client, "alice@example.com")
    assert response.status_code == HTTPStatus.FOUND
    link = last_link()

    _, done = _set_password_from_link(client, link, NEW_PASSWORD)

    assert done.status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert sign_in(Client(), "alice", NEW_PASSWORD).status_code == HTTPStatus.FOUND
    assert old_session.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND, "old sessions end"
    assert AuditEvent.objects.filter(type=AuditEvent.Type.PASSWORD_RESET, subject=user).exists()
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.PASSWORD_RESET_REQUESTED, subject=user
    ).exists()

    # The same link again: refused, and the password stays.
    replay = Client()
    page, again = _set_password_from_link(replay, link, "yet another passphrase 7")
    assert "Bad Token" in page.content.decode() or "invalid" in page.content.decode()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert again.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)


def test_reset_link_expires(settings, user):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        _request_reset(Client(), "alice@example.com")
        link = last_link()
        # Positive path: within the hour the link opens the form.
        page = Client().get(link.replace("http://testserver", ""), follow=True)
        assert 'name="password1"' in page.content.decode()

        traveller.shift(timedelta(seconds=3601))
        client = Client()
        page, _ = _set_password_from_link(client, link, NEW_PASSWORD)

    assert 'name="password1"' not in page.content.decode()
    user.refresh_from_db()
    assert not user.check_password(NEW_PASSWORD)


def _without_csrf_tokens(content: bytes) -> bytes:
    return re.sub(
        rb'name="csrfmiddlewaretoken" value="[^"]+"', b'name="csrfmiddlewaretoken"', content
    )


def test_reset_answers_identically_for_known_and_unknown_addresses(user):
    known = _request_reset(Client(), "alice@example.com")
    unknown = _request_reset(Client(), "nobody@example.com")

    assert known.status_code == unknown.status_code == HTTPStatus.FOUND
    assert known["Location"] == unknown["Location"]
    assert known.content == unknown.content
    known_page = Client().get(known["Location"])
    unknown_page = Client().get(unknown["Location"])
    # Each render masks the CSRF token anew (the language switcher's form carries one): that
    # differs between any two pages, whoever asked, so it is left out of the comparison.
    assert _without_csrf_tokens(known_page.content) == _without_csrf_tokens(unknown_page.content)
    # Only the mailbox's owner learns the difference.
    assert len(mail.outbox) == 2
    assert "reset" in mail.outbox[0].body.lower()


@pytest.mark.parametrize("email", ["a" * 100_000 + "@example.com", "al\x00ice@example.com", ""])
def test_bad_input_to_the_reset_form_is_a_form_error_never_a_500(client, user, email):
    response = _request_reset(client, email)
    assert response.status_code == HTTPStatus.OK
    assert "errorlist" in response.content.decode()
    assert not mail.outbox


def test_bad_reset_keys_are_refused_never_a_500(client):
    for key in ["zz-notakey", "1-" + "x" * 5000, "%00-abc", "99999999999999999999-abc"]:
        response = client.get(f"/accounts/password/reset/key/{key}/", follow=True)
        assert response.status_code in (HTTPStatus.OK, HTTPStatus.NOT_FOUND)
        assert 'name="password1"' not in response.content.decode()


# --- Forced reset -------------------------------------------------------------------------------


def test_forced_reset_refuses_the_old_password_until_the_user_resets(
    rf, user, password, admin_user, django_capture_on_commit_callbacks
):
    signed_in = _signed_in_client("alice", password)
    request = rf.post("/admin/")
    request.user = admin_user
    request.session = Client().session

    with django_capture_on_commit_callbacks(execute=True):
        sent = services.force_password_reset(user=user, actor=admin_user, request=request)

    assert sent
    assert signed_in.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND, "sessions ended"
    client = Client()
    response = sign_in(client, "alice", password)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/account/password-reset-required/"
    assert not is_signed_in(client)
    page = client.get(response["Location"])
    assert "choose a new password" in page.content.decode()
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.PASSWORD_RESET_FORCED, subject=user, actor=admin_user
    ).exists()
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.LOGIN_FAILED, subject=user, extra__reason="password_reset_required"
    ).exists()

    # A wrong password still gets the ordinary answer (the page needs the right password).
    wrong = sign_in(Client(), "alice", "not the password")
    assert wrong.status_code == HTTPStatus.OK

    _set_password_from_link(Client(), last_link(), NEW_PASSWORD)

    user.refresh_from_db()
    assert not user.password_reset_required
    fresh = Client()
    assert sign_in(fresh, "alice", NEW_PASSWORD)["Location"] == OVERVIEW_URL
    assert is_signed_in(fresh)


def test_forced_reset_also_ends_sessions_the_tracker_has_not_seen(rf, user, admin_user):
    untracked = Client()
    untracked.force_login(user)  # signed in, no request since: usersessions has no row
    assert not UserSession.objects.filter(user=user).exists()
    request = rf.post("/admin/")
    request.user = admin_user

    services.force_password_reset(user=user, actor=admin_user, request=request)

    assert untracked.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND


def test_seed_users_and_their_passwords_need_no_reset(db):
    User = get_user_model()
    bill = User.objects.create_user("Bill", "bills_email@example.com", "pw")
    assert not bill.password_reset_required
    client = Client()
    assert sign_in(client, "Bill", "pw")["Location"] == OVERVIEW_URL
    assert re.search(r"Bill", client.get(OVERVIEW_URL).content.decode())
