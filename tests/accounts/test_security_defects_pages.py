"""The account pages against an attacker's input: emailed links on the issuer whatever the Host
header, the same work for known and unknown reset addresses, `next` limited to the issuer's
origin, personal pages never stored by caches, and a password change that ends other sessions
unless the user says otherwise."""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.forms import ChangePasswordForm, ResetPasswordKeyForm, SetPasswordForm
from accounts.models import AuditEvent
from tests.accounts.conftest import (
    CHANGE_URL,
    LOGIN_URL,
    OVERVIEW_URL,
    RESET_URL,
    is_signed_in,
    last_link,
    sign_in,
)

pytestmark = pytest.mark.django_db

ISSUER = "https://id.example.com"
NEW_PASSWORD = "a brand new passphrase 42"
# Hosts Django accepts in debug (ALLOWED_HOSTS aliases), with and without a port.
HOST_ALIASES = ["testserver", "127.0.0.1:1", "localhost:8765", "[::1]:9"]


@pytest.fixture
def issuer(settings) -> str:
    """An https issuer whose host is none of the test client's: every link must come from it."""
    settings.IDP_ISSUER = ISSUER
    return ISSUER


def _signed_in(login: str, password: str, **defaults: str) -> Client:
    client = Client(**defaults)
    assert sign_in(client, login, password).status_code == HTTPStatus.FOUND
    assert client.get(OVERVIEW_URL).status_code == HTTPStatus.OK  # tracked by usersessions
    return client


def _request_reset(client: Client, email: str, **extra: str):
    client.get(RESET_URL, **extra)
    return client.post(RESET_URL, {"email": email}, **extra)


# --- Emailed links: on the configured issuer, never on the request's Host --------------------


@pytest.mark.parametrize("host", HOST_ALIASES)
def test_reset_link_is_on_the_issuer_whatever_the_host_header(issuer, user, host):
    response = _request_reset(Client(), "alice@example.com", HTTP_HOST=host)

    assert response.status_code == HTTPStatus.FOUND
    link = last_link()
    assert link.startswith(f"{issuer}/accounts/password/reset/key/"), link
    body = mail.outbox[-1].body
    assert host not in body, "the Host header names no site in the email"
    assert "id.example.com" in body


def test_emailed_reset_link_opens_the_reset_form(issuer, user):
    # The link's path and key survive the move onto the issuer: it still opens the form.
    _request_reset(Client(), "alice@example.com", HTTP_HOST="127.0.0.1:1")
    page = Client().get(last_link().removeprefix(issuer), follow=True)
    assert 'name="password1"' in page.content.decode()


def test_unknown_account_email_links_to_the_issuer(issuer, db):
    _request_reset(Client(), "nobody@example.com", HTTP_HOST="localhost:8765")

    body = mail.outbox[-1].body
    assert "localhost:8765" not in body
    assert "id.example.com" in body


def test_email_verification_link_is_on_the_issuer(issuer, user, password):
    browser = _signed_in("alice", password)
    response = browser.post(
        "/accounts/email/",
        {"email": "alice.work@example.com", "action_add": ""},
        HTTP_HOST="127.0.0.1:1",
    )

    assert response.status_code == HTTPStatus.FOUND
    link = last_link(r"https?://\S+/accounts/confirm-email/\S+/")
    assert link.startswith(f"{issuer}/accounts/confirm-email/"), link
    assert "127.0.0.1:1" not in mail.outbox[-1].body


def test_security_notice_names_the_issuer_not_the_host(issuer, user, password):
    browser = _signed_in("alice", password)
    mail.outbox.clear()
    browser.post(
        CHANGE_URL,
        {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        HTTP_HOST="localhost:8765",
    )

    assert len(mail.outbox) == 1, "allauth's 'password changed' notice"
    assert "localhost:8765" not in mail.outbox[0].body
    assert "id.example.com" in mail.outbox[0].body


def test_administrators_reset_link_is_on_the_issuer(
    issuer, rf, user, admin_user, django_capture_on_commit_callbacks
):
    request = rf.post("/admin/", HTTP_HOST="127.0.0.1:1")
    request.user = admin_user
    request.session = Client().session

    with django_capture_on_commit_callbacks(execute=True):
        assert services.force_password_reset(user=user, actor=admin_user, request=request)

    assert last_link().startswith(f"{issuer}/accounts/password/reset/key/")
    assert "127.0.0.1:1" not in mail.outbox[-1].body


# --- Password reset: the same work for a known and an unknown address -------------------------


def _reset_work(email: str, *, ip: str) -> tuple:
    """What one reset request does: its answer, the rows it writes, the emails it sends. Each
    from an address of its own, so both start from the same rate-limit state."""
    client = Client(REMOTE_ADDR=ip)
    client.get(RESET_URL)
    sent_before = len(mail.outbox)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(RESET_URL, {"email": email})
    writes = [
        q["sql"].split(" (")[0]
        for q in queries
        if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    return response, writes, len(mail.outbox) - sent_before


def test_reset_does_the_same_work_for_known_and_unknown_addresses(user):
    # A timing test would be flaky; equal work is what makes equal time. The costly steps of a
    # reset request are the audit row's durable write (a commit) and sending one email (an SMTP
    # round trip in production); both paths now do exactly those, so the time no longer tells a
    # registered address apart (OWASP ASVS 5.0 V6.3.8). What is left differs by an indexed read.
    known, known_writes, known_sent = _reset_work("alice@example.com", ip="192.0.2.1")
    unknown, unknown_writes, unknown_sent = _reset_work("nobody@example.com", ip="192.0.2.2")

    assert known.status_code == unknown.status_code == HTTPStatus.FOUND
    assert known["Location"] == unknown["Location"]
    assert known.content == unknown.content
    assert known_sent == unknown_sent == 1
    # The same statements written: the audit row (and the rate-limit counts, in a database cache).
    assert known_writes == unknown_writes
    assert known_writes.count('INSERT INTO "accounts_auditevent"') == 1
    requested = AuditEvent.objects.filter(type=AuditEvent.Type.PASSWORD_RESET_REQUESTED)
    assert [event.subject for event in requested.order_by("pk")] == [user, None]


def test_unknown_account_email_offers_sign_up_only_when_it_is_open(settings, db):
    settings.IDP_SIGNUP_OPEN = True
    _request_reset(Client(), "nobody@example.com")
    assert "/accounts/signup/" in mail.outbox[-1].body

    settings.IDP_SIGNUP_OPEN = False
    _request_reset(Client(), "nobody@example.com")
    assert "/accounts/signup/" not in mail.outbox[-1].body
    assert "ask your administrator" in mail.outbox[-1].body


# --- `next`: a path on this site, or the issuer's own origin exactly --------------------------


def _signed_in_next(client: Client, password: str, next_url: str, **extra: str) -> str:
    client.get(LOGIN_URL, **extra)
    response = client.post(
        LOGIN_URL, {"login": "alice", "password": password, "next": next_url}, **extra
    )
    assert response.status_code == HTTPStatus.FOUND
    assert is_signed_in(client)
    return response["Location"]


@pytest.mark.parametrize(
    "next_url",
    ["/account/activity/", "/accounts/sessions/?x=1", "http://127.0.0.1:8000/account/apps/"],
)
def test_next_on_this_site_or_the_issuers_origin_is_honoured(settings, user, password, next_url):
    settings.IDP_ISSUER = "http://127.0.0.1:8000"
    assert _signed_in_next(Client(), password, next_url) == next_url


@pytest.mark.parametrize(
    "next_url",
    [
        "http://testserver/account/",  # the test client's host, allowed in debug
        "http://localhost/account/",  # another ALLOWED_HOSTS alias
        "https://127.0.0.1:8000/account/",  # the issuer's host, another scheme
        "http://127.0.0.1:8001/account/",  # the issuer's host, another port
        "http://127.0.0.1/account/",  # the issuer's host, no port
        "//127.0.0.1:8000/account/",  # scheme-relative
        "//evil.example/",
        "/\\evil.example/",
        "account/",  # relative to the current page, not a path from the root
    ],
)
def test_next_elsewhere_falls_back_to_the_account_page(settings, user, password, next_url):
    settings.IDP_ISSUER = "http://127.0.0.1:8000"
    # Positive path: the issuer's own origin is honoured.
    ok = _signed_in_next(Client(), password, "http://127.0.0.1:8000/account/apps/")
    assert ok == "http://127.0.0.1:8000/account/apps/"

    assert _signed_in_next(Client(), password, next_url) == OVERVIEW_URL


def test_next_never_downgrades_an_https_issuer_to_http(settings, user, password):
    settings.IDP_ISSUER = ISSUER
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "id.example.com"]
    on_issuer = {"HTTP_HOST": "id.example.com", "secure": True}
    ok = _signed_in_next(Client(), password, f"{ISSUER}/account/apps/", **on_issuer)
    assert ok == f"{ISSUER}/account/apps/"

    for next_url in ["http://id.example.com/account/apps/", f"{ISSUER}:8443/account/apps/"]:
        assert _signed_in_next(Client(), password, next_url, **on_issuer) == OVERVIEW_URL


def test_admin_login_next_is_held_to_the_same_rule(admin_user, password):
    browser = Client()
    browser.force_login(admin_user)
    ok = browser.get("/admin/login/", {"next": "/admin/accounts/user/"})
    assert ok["Location"] == "/admin/accounts/user/"

    # The request's own host used to count as safe: in debug that is "testserver".
    response = browser.get("/admin/login/", {"next": "http://testserver/elsewhere/"})
    assert response["Location"] == "/admin/"


def test_enrol_page_next_is_held_to_the_same_rule(settings, db):
    settings.IDP_STAFF_MFA_REQUIRED = True  # staff without a second factor land on this page
    staff = get_user_model().objects.create_user("helpdesk", "help@example.com", is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/account/two-step-required/", {"next": "/account/activity/"})
    assert 'href="/account/activity/"' in page.content.decode()

    offsite = browser.get("/account/two-step-required/", {"next": "http://testserver/x/"})
    assert "http://testserver/x/" not in offsite.content.decode()


# --- Pages with personal data are never stored by a cache -----------------------------------


SIGNED_IN_PAGES = [
    OVERVIEW_URL,
    "/account/profile/",
    "/account/apps/",
    "/account/activity/",
    "/accounts/sessions/",
    "/accounts/email/",
    CHANGE_URL,
    "/accounts/2fa/",
    "/accounts/2fa/totp/activate/",
]
SIGNED_OUT_PAGES = [LOGIN_URL, RESET_URL, "/accounts/password/reset/done/"]


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_signed_in_pages_are_never_stored(user, password, path):
    response = _signed_in("alice", password).get(path)

    assert response.status_code == HTTPStatus.OK
    cache_control = response.get("Cache-Control", "")
    assert "no-store" in cache_control, cache_control
    assert "private" in cache_control, cache_control


@pytest.mark.parametrize("path", SIGNED_OUT_PAGES)
def test_account_flow_pages_are_never_stored(client, db, path):
    response = client.get(path)

    assert response.status_code == HTTPStatus.OK
    assert "no-store" in response.get("Cache-Control", "")


def test_public_documents_stay_cacheable(client, db):
    # The mechanism is for the account pages only: discovery is meant to be cached by apps.
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == HTTPStatus.OK
    assert "no-store" not in response.get("Cache-Control", "")
    assert "max-age" in response.get("Cache-Control", "")


# --- Password change: other sessions end unless the user keeps them -------------------------


def _as_a_browser_posts(page_html: str, **fields: str) -> dict[str, str]:
    """The form fields given, plus the "sign out everywhere else" box as the page left it."""
    box = re.search(r"<input[^>]*name=\"sign_out_others\"[^>]*>", page_html)
    assert box, "the question is on the form"
    return {**fields, **({"sign_out_others": "on"} if "checked" in box.group(0) else {})}


def test_password_change_ends_other_sessions_by_default(user, password):
    this = _signed_in("alice", password)
    other = _signed_in("alice", password)
    other_key = other.session.session_key
    page = this.get(CHANGE_URL).content.decode()

    data = _as_a_browser_posts(
        page, oldpassword=password, password1=NEW_PASSWORD, password2=NEW_PASSWORD
    )
    response = this.post(CHANGE_URL, data)

    assert response.status_code == HTTPStatus.FOUND
    assert this.get(OVERVIEW_URL).status_code == HTTPStatus.OK, "this browser stays"
    assert other.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND, "the other one is out"
    assert not Session.objects.filter(session_key=other_key).exists()
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED, subject=user)
    assert event.extra["signed_out_others"] is True


def test_password_change_can_still_keep_other_sessions(user, password):
    # Positive path above; unticking the box keeps the other browser signed in.
    this = _signed_in("alice", password)
    other = _signed_in("alice", password)

    this.post(
        CHANGE_URL,
        {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert other.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    event = AuditEvent.objects.get(type=AuditEvent.Type.PASSWORD_CHANGED, subject=user)
    assert event.extra["signed_out_others"] is False


@pytest.mark.parametrize("form_class", [ChangePasswordForm, SetPasswordForm, ResetPasswordKeyForm])
def test_every_password_form_starts_with_signing_out_ticked(user, form_class):
    assert form_class(user=user).fields["sign_out_others"].initial is True
