"""The security centre at /account/: one page with every section, and the pages behind it
(name, email addresses, security activity)."""

from __future__ import annotations

import re
from datetime import timedelta
from http import HTTPStatus

import pytest
import time_machine
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    MFA_AUTHENTICATE_URL,
    OVERVIEW_URL,
    enable_totp,
    obtain_tokens,
    other_totp_code,
    sign_in,
    sign_in_with_totp,
)
from tests.accounts.test_pages import _inline_code

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
EMAIL_URL = "/accounts/email/"


@pytest.fixture
def browser(user, password) -> Client:
    client = Client(HTTP_USER_AGENT=FIREFOX)
    sign_in(client, "alice", password)
    return client


# --- The overview -------------------------------------------------------------------------------


def test_overview_has_every_section_and_links_to_its_page(browser):
    response = browser.get(OVERVIEW_URL)
    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    for heading, link in [
        ("Profile", "/account/profile/"),
        ("Email addresses", "/accounts/email/"),
        ("Password", "/accounts/password/change/"),
        ("Two-step verification", "/accounts/2fa/"),
        ("Where you are signed in", "/accounts/sessions/"),
        ("Connected apps", "/account/apps/"),
        ("Recent security activity", "/account/activity/"),
    ]:
        assert f">{heading}</h2>" in html, heading
        assert f'href="{link}"' in html, link
    assert "Alice Liddell" in html
    assert "alice@example.com" in html
    assert "Verified" in html
    assert "Off: your password alone signs you in." in html
    assert "Firefox on Linux" in html, "this session, by device"
    assert "Sign-in succeeded" in html, "the sign-in just made"


def test_overview_reflects_two_step_methods_apps_and_a_password_change(user, password, app):
    secret = enable_totp(user)
    client = Client()
    sign_in_with_totp(client, "alice", password, secret)
    obtain_tokens(client, app)
    client.post(
        "/accounts/password/change/",
        {
            "oldpassword": password,
            "password1": "a new passphrase 77",
            "password2": "a new passphrase 77",
        },
    )
    html = client.get(OVERVIEW_URL).content.decode()
    assert "On: signing in asks for a second step." in html
    assert "Authenticator app: on" in html
    assert "Team Notes" in html
    assert "Last changed" in html
    assert "Password changed" in html


def test_account_pages_need_a_session(client):
    for path in [OVERVIEW_URL, "/account/profile/", "/account/apps/", "/account/activity/"]:
        response = client.get(path)
        assert response.status_code == HTTPStatus.FOUND, path
        assert response["Location"].startswith("/accounts/login/"), path


def test_security_pages_carry_no_inline_script_or_style(user, password, app):
    enable_totp(user)
    client = Client()
    client.force_login(user)
    obtain_tokens(client, app)
    for path in [
        OVERVIEW_URL,
        "/account/profile/",
        "/account/apps/",
        "/account/activity/",
        "/accounts/sessions/",
        "/accounts/2fa/",
        "/accounts/2fa/webauthn/add/",
        "/accounts/2fa/totp/deactivate/",
        "/accounts/2fa/recovery-codes/generate/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/reauthenticate/",
        "/accounts/2fa/reauthenticate/",
    ]:
        response = client.get(path)
        assert response.status_code == HTTPStatus.OK, path
        assert _inline_code(response.content.decode()) == [], path
    anonymous = Client()
    sign_in(anonymous, "alice", password)  # stops at the second step
    page = anonymous.get(MFA_AUTHENTICATE_URL)
    assert page.status_code == HTTPStatus.OK
    assert _inline_code(page.content.decode()) == []
    # A security key is offered only to its owner (templates/mfa/authenticate.html): an
    # authenticator-app user's code step loads no WebAuthn script at all.
    assert "webauthn.js" not in page.content.decode()


# --- Profile ------------------------------------------------------------------------------------


def test_profile_edit_saves_the_name_and_audits_it(browser, user):
    page = browser.get("/account/profile/")
    assert page.status_code == HTTPStatus.OK
    assert 'value="Alice"' in page.content.decode()
    response = browser.post("/account/profile/", {"first_name": "Alicia", "last_name": "Liddell"})
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == OVERVIEW_URL
    user.refresh_from_db()
    assert user.get_full_name() == "Alicia Liddell"
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_CHANGED)
    assert (event.actor, event.subject, event.extra["fields"]) == (user, user, ["first_name"])
    # Saving the same name again changes nothing and writes nothing.
    browser.post("/account/profile/", {"first_name": "Alicia", "last_name": "Liddell"})
    assert AuditEvent.objects.filter(type=AuditEvent.Type.USER_CHANGED).count() == 1


@pytest.mark.parametrize(
    "data",
    [
        {"first_name": "x" * 151, "last_name": "Liddell"},
        {"first_name": "Alice", "last_name": "y" * 5000},
    ],
)
def test_profile_refuses_bad_input_with_a_form_error(browser, user, data):
    response = browser.post("/account/profile/", data)
    assert response.status_code == HTTPStatus.OK
    assert "Ensure this value has at most 150 characters" in response.content.decode()
    user.refresh_from_db()
    assert user.get_full_name() == "Alice Liddell"


def test_profile_cannot_touch_anything_else(browser, user):
    browser.post(
        "/account/profile/",
        {"first_name": "A", "last_name": "L", "is_staff": "on", "email": "evil@example.com"},
    )
    user.refresh_from_db()
    assert not user.is_staff
    assert user.email == "alice@example.com"


# --- Email addresses (allauth's pages, branded) -------------------------------------------------


def test_add_verify_and_make_primary_an_address(user, password):
    secret = enable_totp(user)  # the best-protected users can manage addresses too
    client = Client()
    sign_in_with_totp(client, "alice", password, secret)
    page = client.get(EMAIL_URL)
    assert page.status_code == HTTPStatus.OK
    assert 'class="site-header"' in page.content.decode(), "our layout"

    added = client.post(EMAIL_URL, {"action_add": "", "email": "alice@work.example"})
    assert added.status_code == HTTPStatus.FOUND
    address = EmailAddress.objects.get(user=user, email="alice@work.example")
    assert not address.verified
    # Not verified yet: it cannot become the primary address.
    client.post(EMAIL_URL, {"action_primary": "", "email": "alice@work.example"})
    address.refresh_from_db()
    assert not address.primary

    link = re.findall(r"https?://\S+/accounts/confirm-email/\S+/", mail.outbox[-1].body)[-1]
    path = link.replace("http://testserver", "")
    assert client.get(path).status_code == HTTPStatus.OK
    assert client.post(path).status_code == HTTPStatus.FOUND
    address.refresh_from_db()
    assert address.verified

    client.post(EMAIL_URL, {"action_primary": "", "email": "alice@work.example"})
    address.refresh_from_db()
    user.refresh_from_db()
    assert address.primary
    assert user.email == "alice@work.example"

    client.post(EMAIL_URL, {"action_remove": "", "email": "alice@example.com"})
    assert not EmailAddress.objects.filter(user=user, email="alice@example.com").exists()


# --- Activity -----------------------------------------------------------------------------------


def test_activity_lists_own_events_newest_first_with_device_and_ip(user, password):
    secret = enable_totp(user)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        failed = Client(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="203.0.113.5")
        sign_in(failed, "alice", "wrong password")
        clock.shift(60)
        sign_in(failed, "alice", password)
        failed.post(MFA_AUTHENTICATE_URL, {"code": other_totp_code(secret)})
        clock.shift(60)
        browser = Client(HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="198.51.100.20")
        sign_in_with_totp(browser, "alice", password, secret)
        get_user_model().objects.create_user("bob", "bob@example.com", password)
        sign_in(Client(), "bob", password)  # someone else's sign-in: not on alice's page

        response = browser.get("/account/activity/")

    assert response.status_code == HTTPStatus.OK
    entries = response.context["entries"]
    titles = [entry.title for entry in entries]
    assert titles == ["Sign-in succeeded", "Sign-in failed", "Sign-in failed"]
    assert [entry.detail for entry in entries] == [
        "",
        "wrong two-step verification code",
        "wrong password",
    ]
    assert entries[0].device == "Firefox on Linux"
    assert entries[0].event.ip == "198.51.100.20"
    assert entries[2].event.ip == "203.0.113.5"
    html = response.content.decode()
    assert "wrong password" in html
    assert "198.51.100.20" in html
    assert "bob" not in html


def test_activity_is_paginated(browser, user):
    for n in range(45):
        AuditEvent.objects.create(
            type=AuditEvent.Type.LOGIN_SUCCEEDED,
            subject=user,
            actor=user,
            created_at=timezone.now() - timedelta(minutes=n + 1),
        )
    first = browser.get("/account/activity/")
    assert len(first.context["entries"]) == 20
    assert "Page 1 of 3" in first.content.decode()
    assert 'href="?page=2"' in first.content.decode()
    last = browser.get("/account/activity/", {"page": "3"})
    assert len(last.context["entries"]) == 6  # 45 + the real sign-in = 46
    # Odd page numbers are never an error.
    assert browser.get("/account/activity/", {"page": "abc"}).context["page"].number == 1
    assert browser.get("/account/activity/", {"page": "999"}).context["page"].number == 3
    assert browser.get("/account/activity/", {"page": "-1"}).status_code == HTTPStatus.OK
