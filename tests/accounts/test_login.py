"""Signing in and out through allauth's pages: the positive paths first, then the attacks."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import (
    LOGIN_URL,
    LOGOUT_URL,
    OVERVIEW_URL,
    WRONG_PASSWORD_ERROR,
    is_signed_in,
    sign_in,
)
from tests.oidc.authorize_helpers import PageParser

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("login", ["alice", "alice@example.com", "ALICE@example.com"])
def test_sign_in_by_username_or_email_lands_on_the_account_page(client, user, password, login):
    response = sign_in(client, login, password)

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == OVERVIEW_URL
    assert is_signed_in(client)
    page = client.get(OVERVIEW_URL)
    assert page.status_code == HTTPStatus.OK
    assert "Alice Liddell" in page.content.decode()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGIN_SUCCEEDED, subject=user).exists()


def test_sign_in_page_labels_every_field(client):
    html = client.get(LOGIN_URL).content.decode()
    assert '<label for="id_login">' in html
    assert '<label for="id_password">' in html
    assert 'href="/accounts/password/reset/"' in html


def test_sign_out_asks_for_confirmation_and_needs_a_post(client, user, password):
    sign_in(client, "alice", password)

    confirmation = client.get(LOGOUT_URL)
    assert confirmation.status_code == HTTPStatus.OK
    assert 'method="post"' in confirmation.content.decode()
    assert is_signed_in(client), "a GET must not sign out (a link or image could do it)"

    response = client.post(LOGOUT_URL)
    assert response.status_code == HTTPStatus.FOUND
    assert not is_signed_in(client)
    assert client.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND  # back to the login page
    assert AuditEvent.objects.filter(type=AuditEvent.Type.LOGOUT, subject=user).exists()


def test_site_root_sends_visitors_to_sign_in_and_members_to_their_account(client, user, password):
    assert client.get("/")["Location"] == LOGIN_URL
    sign_in(client, "alice", password)
    assert client.get("/")["Location"] == OVERVIEW_URL


def test_account_page_needs_a_session(client):
    response = client.get(OVERVIEW_URL)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"].startswith(f"{LOGIN_URL}?next=")


def test_account_page_links_to_password_two_factor_sessions_and_sign_out(client, user, password):
    sign_in(client, "alice", password)
    html = client.get(OVERVIEW_URL).content.decode()
    for href in (
        "/accounts/password/change/",
        "/accounts/2fa/",
        "/accounts/sessions/",
    ):
        assert f'href="{href}"' in html
    # Sign out is a POST form with its CSRF token: it signs out without a confirmation page.
    signout, inside = PageParser(html).form_with("form", id="site-signout")
    assert (signout["method"], signout["action"]) == ("post", LOGOUT_URL)
    names = [(tag, found.get("name"), found.get("type")) for tag, found in inside]
    assert ("input", "csrfmiddlewaretoken", "hidden") in names
    assert ("button", None, "submit") in names
    assert "alice@example.com" in html


def test_pbkdf2_hash_upgrades_to_argon2id_on_sign_in(client, user, password):
    User = get_user_model()
    User.objects.filter(pk=user.pk).update(password=make_password(password, hasher="pbkdf2_sha256"))
    assert User.objects.get(pk=user.pk).password.startswith("pbkdf2_sha256$")

    sign_in(client, "alice", password)

    assert is_signed_in(client)
    assert User.objects.get(pk=user.pk).password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


# --- Attacks and refusals ----------------------------------------------------------------------


def test_wrong_password_is_refused_and_audited(client, user, password):
    response = sign_in(client, "alice", "not the password")

    assert response.status_code == HTTPStatus.OK
    assert WRONG_PASSWORD_ERROR in response.content.decode()
    assert not is_signed_in(client)
    event = AuditEvent.objects.get(type=AuditEvent.Type.LOGIN_FAILED)
    assert event.subject == user
    assert event.extra == {"reason": "bad_password"}
    assert event.ip == "127.0.0.1"
    assert "not the password" not in str(event.extra)


def _page_without_csrf_token(response) -> str:
    import re

    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_unknown_user_and_wrong_password_get_identical_answers(user, password):
    # Positive path: the right password signs in.
    assert sign_in(Client(), "alice", password).status_code == HTTPStatus.FOUND

    wrong = sign_in(Client(), "alice", "not the password")
    unknown = sign_in(Client(), "nobody-here", "not the password")
    wrong_email = sign_in(Client(), "alice@example.com", "not the password")
    unknown_email = sign_in(Client(), "nobody@example.com", "not the password")

    assert wrong.status_code == unknown.status_code == HTTPStatus.OK
    body = _page_without_csrf_token(wrong)
    assert body.replace("alice", "nobody-here") == _page_without_csrf_token(unknown)
    assert _page_without_csrf_token(wrong_email).replace(
        "alice@example.com", "nobody@example.com"
    ) == _page_without_csrf_token(unknown_email)
    unknown_event = AuditEvent.objects.filter(
        type=AuditEvent.Type.LOGIN_FAILED, subject__isnull=True
    ).first()
    assert unknown_event is not None
    assert unknown_event.extra == {"reason": "unknown_account"}
    assert "nobody" not in str(unknown_event.extra), "typed logins are never stored"


def test_inactive_user_cannot_sign_in(client, user, password):
    user.is_active = False
    user.save()

    response = sign_in(client, "alice", password)

    assert not is_signed_in(client)
    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == "/accounts/inactive/"
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.LOGIN_FAILED, subject=user, extra__reason="inactive"
    ).exists()
    # Even a session created by other means is not honoured for an inactive user.
    client.force_login(user)
    assert client.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "http://evil.example/steal",
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "https:evil.example",
        "https:/evil.example",
        "javascript:alert(1)",
        " //evil.example/",
        "http://testserver@evil.example/",
    ],
)
def test_next_pointing_off_site_never_redirects_off_site(client, user, password, next_url):
    # Positive path: an on-site `next` is honoured.
    ok = sign_in(Client(), "alice", password, next="/accounts/sessions/")
    assert ok["Location"] == "/accounts/sessions/"

    response = sign_in(client, "alice", password, next=next_url)

    assert is_signed_in(client)
    assert response["Location"] == OVERVIEW_URL, response["Location"]


def test_login_post_without_csrf_token_is_refused(user, password):
    client = Client(enforce_csrf_checks=True)
    page = client.get(LOGIN_URL)
    assert page.status_code == HTTPStatus.OK
    # Positive path: with the token from the page the same POST signs in.
    token = page.context["csrf_token"]
    good = client.post(
        LOGIN_URL, {"login": "alice", "password": password, "csrfmiddlewaretoken": str(token)}
    )
    assert good.status_code == HTTPStatus.FOUND
    client.post(LOGOUT_URL, {"csrfmiddlewaretoken": str(token)})

    attacker = Client(enforce_csrf_checks=True)
    response = attacker.post(LOGIN_URL, {"login": "alice", "password": password})

    assert response.status_code == HTTPStatus.FORBIDDEN
    assert "_auth_user_id" not in attacker.session
    assert "Company" in response.content.decode(), "the branded 403 page"


@pytest.mark.parametrize(
    ("login", "password_value"),
    [
        ("a" * 100_000, "x"),
        ("alice", "p" * 100_000),
        ("al\x00ice", "x"),
        ("alice", "pass\x00word"),
        ("alice@exa\x00mple.com", "x"),
        ("", ""),
    ],
)
def test_bad_input_to_the_login_form_is_a_form_error_never_a_500(
    client, user, login, password_value
):
    response = sign_in(client, login, password_value)
    assert response.status_code == HTTPStatus.OK
    assert not is_signed_in(client)
    assert "errorlist" in response.content.decode()
