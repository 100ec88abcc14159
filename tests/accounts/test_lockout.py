"""Brute-force protection: the per-account lock on top of allauth's rate limits, admin included."""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    LOGIN_URL,
    OVERVIEW_URL,
    WRONG_PASSWORD_ERROR,
    is_signed_in,
    sign_in,
)

pytestmark = pytest.mark.django_db

TOO_MANY = "Too many failed login attempts"


def _body(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def _fail(times: int, login: str = "alice") -> None:
    for _ in range(times):
        response = sign_in(Client(), login, "wrong password")
        assert response.status_code == HTTPStatus.OK


def test_failures_below_the_threshold_do_not_lock(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 5
    _fail(4)
    user.refresh_from_db()
    assert user.failed_login_count == 4
    assert not user.is_locked()

    client = Client()
    assert sign_in(client, "alice", password).status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    assert user.failed_login_count == 0, "a successful sign-in starts the count again"


def test_locked_account_cannot_sign_in_with_the_right_password_until_the_lock_ends(
    settings, user, password
):
    settings.IDP_LOCKOUT_THRESHOLD = 5
    settings.IDP_LOCKOUT_SECONDS = 900
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        wrong = sign_in(Client(), "alice", "wrong password")
        _fail(4)
        user.refresh_from_db()
        assert user.locked_until == start + timedelta(seconds=900)
        # allauth's own per-login limit (5 failures / 5 minutes) would also refuse now; clear
        # it to show that our lock alone refuses the right password.
        cache.clear()

        client = Client()
        locked = sign_in(client, "alice", password)

        assert locked.status_code == HTTPStatus.OK
        assert not is_signed_in(client)
        assert WRONG_PASSWORD_ERROR in locked.content.decode()
        assert _body(locked) == _body(wrong), "a lock answers exactly like a wrong password"
        assert TOO_MANY not in locked.content.decode()

        traveller.shift(timedelta(seconds=899))
        cache.clear()
        assert sign_in(client, "alice", password).status_code == HTTPStatus.OK
        assert not is_signed_in(client)

        traveller.shift(timedelta(seconds=2))
        response = sign_in(client, "alice", password)

        assert response.status_code == HTTPStatus.FOUND
        assert is_signed_in(client)


def test_lock_and_failures_are_audited(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 3
    _fail(3)
    cache.clear()
    sign_in(Client(), "alice", password)

    failures = AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_FAILED, subject=user)
    assert [e.extra["reason"] for e in failures.order_by("id")] == [
        "bad_password",
        "bad_password",
        "bad_password",
        "locked",
    ]
    lock = AuditEvent.objects.get(type=AuditEvent.Type.ACCOUNT_LOCKED)
    assert lock.subject == user
    assert lock.ip == "127.0.0.1"
    assert lock.extra["failures"] == 3


def test_failures_while_locked_do_not_extend_the_lock(settings, user):
    settings.IDP_LOCKOUT_THRESHOLD = 2
    _fail(2)
    user.refresh_from_db()
    locked_until = user.locked_until
    assert locked_until is not None
    cache.clear()
    _fail(3)
    user.refresh_from_db()
    assert user.locked_until == locked_until


def test_lock_counts_sign_in_by_email_too(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 2
    _fail(2, login="alice@example.com")
    user.refresh_from_db()
    assert user.is_locked()
    cache.clear()
    client = Client()
    assert sign_in(client, "alice", password).status_code == HTTPStatus.OK
    assert not is_signed_in(client)


def test_a_lock_does_not_sign_the_owner_out(settings, user, password):
    owner = Client()
    assert sign_in(owner, "alice", password).status_code == HTTPStatus.FOUND
    settings.IDP_LOCKOUT_THRESHOLD = 2

    _fail(2)  # someone else tries to guess

    user.refresh_from_db()
    assert user.is_locked()
    assert owner.get(OVERVIEW_URL).status_code == HTTPStatus.OK


def test_unknown_accounts_are_never_locked_and_answer_like_known_ones(settings, user):
    settings.IDP_LOCKOUT_THRESHOLD = 2
    known = [sign_in(Client(), "alice", "wrong") for _ in range(3)]
    cache.clear()
    unknown = [sign_in(Client(), "nobody", "wrong") for _ in range(3)]
    for k, u in zip(known, unknown, strict=True):
        assert k.status_code == u.status_code
        assert _body(k).replace("alice", "X") == _body(u).replace("nobody", "X")


def test_allauth_rate_limits_stay_on(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 1000  # our lock out of the way
    _fail(5)
    response = sign_in(Client(), "alice", password)
    assert TOO_MANY in response.content.decode()
    assert response.status_code == HTTPStatus.OK


def test_unlock_by_an_admin_lets_the_user_in(settings, user, password, admin_user):
    from accounts.services import unlock_user

    settings.IDP_LOCKOUT_THRESHOLD = 2
    _fail(2)
    cache.clear()
    assert sign_in(Client(), "alice", password).status_code == HTTPStatus.OK

    user.refresh_from_db()
    unlock_user(user=user, actor=admin_user)

    client = Client()
    assert sign_in(client, "alice", password).status_code == HTTPStatus.FOUND
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.ACCOUNT_UNLOCKED, subject=user, actor=admin_user
    ).exists()


# --- The admin signs in through the same page -------------------------------------------------


def test_admin_login_goes_through_allauth(client, admin_user, password):
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == f"{LOGIN_URL}?next=%2Fadmin%2F"

    signed_in = sign_in(client, "root", password, next="/admin/")
    assert signed_in["Location"] == "/admin/"
    assert client.get("/admin/").status_code == HTTPStatus.OK
    # The admin's own login URL sends a signed-in admin on to the admin.
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/admin/"


def test_admin_login_cannot_be_used_to_bypass_the_lock(settings, admin_user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 2
    _fail(2, login="root")
    cache.clear()

    client = Client()
    # Django's own admin login form is not reachable: every POST lands on allauth's.
    direct = client.post("/admin/login/", {"username": "root", "password": password})
    assert direct.status_code == HTTPStatus.FOUND
    assert direct["Location"].startswith(LOGIN_URL)
    assert not is_signed_in(client)
    assert sign_in(client, "root", password).status_code == HTTPStatus.OK
    assert not is_signed_in(client)


def test_admin_login_refuses_a_signed_in_non_staff_user_without_a_loop(client, user, password):
    sign_in(client, "alice", password)
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "no access to the administration" in response.content.decode()


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/"])
def test_admin_login_next_stays_on_site(client, next_url):
    response = client.get("/admin/login/", {"next": next_url})
    assert response["Location"] == f"{LOGIN_URL}?next=%2Fadmin%2F"
