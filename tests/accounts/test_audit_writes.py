"""Audit and user-session rows: what a sign-in and `record_event` write, address columns
normalised as Django prepares them, and `last_login` stamped once with the sign-in's audit row."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.usersessions.models import UserSession
from django.contrib.auth import login
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import AuditEvent, User
from tests.accounts.conftest import sign_in
from tests.oidc.conftest import web_client as web_client

pytestmark = pytest.mark.django_db

FIELDS = (
    "type",
    "actor_id",
    "actor_repr",
    "subject_id",
    "subject_repr",
    "client_id",
    "client_repr",
    "ip",
    "user_agent",
    "extra",
)


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        ("203.0.113.9", "203.0.113.9"),
        # Django's preparation of an address column normalises IPv6 and turns "" into NULL
        # (an inet column refuses "").
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("", None),
    ],
)
def test_record_event_writes_the_row_objects_create_would(user, web_client, address, stored):
    request = RequestFactory().get("/", REMOTE_ADDR=address, HTTP_USER_AGENT="UA " + "x" * 600)
    extra = {"grant": "authorization_code", "scope": "openid", "nested": {"n": [1, 2]}}
    event = record_event(
        type=AuditEvent.Type.TOKENS_ISSUED,
        request=request,
        actor=user,
        subject=user,
        client=web_client,
        **extra,
    )
    assert event.pk is not None
    assert not event._state.adding
    row = AuditEvent.objects.get(pk=event.pk)
    assert row.ip == stored
    # The same values through the ORM, compared column by column.
    reference = AuditEvent.objects.create(
        **{name: getattr(event, name) for name in FIELDS}, created_at=event.created_at
    )
    reference.refresh_from_db()
    for name in FIELDS:
        assert getattr(row, name) == getattr(reference, name), name
    assert row.created_at == event.created_at
    assert row.user_agent == ("UA " + "x" * 600)[:512]
    assert row.extra == extra
    assert (row.actor_repr, row.subject_repr, row.client_repr) == ("alice", "alice", "web-app")


def test_record_event_without_request_or_people(db):
    event = record_event(type=AuditEvent.Type.LOGIN_FAILED, reason="unknown_account")
    row = AuditEvent.objects.get(pk=event.pk)
    assert (row.actor_id, row.subject_id, row.client_id, row.ip) == (None, None, None, None)
    assert (row.actor_repr, row.user_agent) == ("", "")
    assert row.extra == {"reason": "unknown_account"}


def test_sign_in_records_its_session_row(user, password):
    browser = HttpClient(HTTP_USER_AGENT="Browser/1.0 " + "y" * 400, REMOTE_ADDR="198.51.100.7")
    login = reverse("account_login")
    assert browser.get(login).status_code == HTTPStatus.OK
    response = browser.post(login, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    row = UserSession.objects.get(user=user)
    assert row.session_key == browser.session.session_key
    assert row.ip == "198.51.100.7"
    max_length = UserSession._meta.get_field("user_agent").max_length
    assert row.user_agent == ("Browser/1.0 " + "y" * 400)[:max_length]
    assert row.created_at is not None
    assert row.last_seen_at is not None
    assert row.data == {}
    # The row is allauth's: its sessions page lists it as this browser's session.
    page = browser.get(reverse("usersessions_list"))
    assert page.status_code == HTTPStatus.OK
    assert b"198.51.100.7" in page.content


def test_sign_in_stamps_last_login_with_its_audit_row(user, password):
    """Django's `update_last_login` receiver is replaced (accounts.apps): `record_login` writes
    `last_login` with the audit row. Through allauth's form and through the seed API's
    `login()` alike, once."""
    assert user.last_login is None
    started = timezone.now()
    assert sign_in(HttpClient(), "alice", password).status_code == HTTPStatus.FOUND
    user.refresh_from_db()
    event = AuditEvent.objects.get(type=AuditEvent.Type.LOGIN_SUCCEEDED)
    assert started <= user.last_login <= event.created_at
    assert event.subject == user

    request = RequestFactory().get("/")
    request.session, request.user = SessionStore(), None
    before = user.last_login
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    assert User.objects.get(pk=user.pk).last_login > before
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_SUCCEEDED).count() == 2
    # Django's receiver would have saved the user a second time.
    assert not user_logged_in.disconnect(dispatch_uid="update_last_login")
