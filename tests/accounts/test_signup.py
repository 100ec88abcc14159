"""Self sign-up: closed by default; when opened, the address must be verified before sign-in.

Users created by an administrator or by `create_user` sign in at once (their address is trusted).
"""

from __future__ import annotations

import re
from http import HTTPStatus

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from tests.accounts.conftest import OVERVIEW_URL, is_signed_in, sign_in

pytestmark = pytest.mark.django_db

SIGNUP_URL = "/accounts/signup/"
STRONG = "an unguessable passphrase 9"


def _sign_up(client: Client, username: str = "carol", email: str = "carol@example.com"):
    client.get(SIGNUP_URL)
    return client.post(
        SIGNUP_URL,
        {"username": username, "email": email, "password1": STRONG, "password2": STRONG},
    )


def test_sign_up_is_closed_by_default(client, settings):
    settings.IDP_SIGNUP_OPEN = False
    page = client.get(SIGNUP_URL)
    assert page.status_code == HTTPStatus.OK
    assert "closed" in page.content.decode().lower()

    _sign_up(client)

    assert not get_user_model().objects.filter(username="carol").exists()
    assert "Create one" not in client.get("/accounts/login/").content.decode()


def test_open_sign_up_requires_email_verification_before_sign_in(client, settings):
    settings.IDP_SIGNUP_OPEN = True
    assert "Create one" in client.get("/accounts/login/").content.decode()

    response = _sign_up(client)

    assert response.status_code == HTTPStatus.FOUND
    carol = get_user_model().objects.get(username="carol")
    assert not is_signed_in(client)
    assert EmailAddress.objects.get(user=carol).verified is False

    # Signing in is refused until the address is verified.
    other = Client()
    refused = sign_in(other, "carol", STRONG)
    assert refused.status_code == HTTPStatus.FOUND
    assert refused["Location"] == "/accounts/confirm-email/"
    assert not is_signed_in(other)

    link = re.findall(
        re.escape(settings.IDP_ISSUER) + r"(/accounts/confirm-email/[^/\s]+/)", mail.outbox[-1].body
    )
    assert link
    confirm = Client()
    confirm.get(link[-1])
    confirm.post(link[-1])
    assert EmailAddress.objects.get(user=carol).verified is True

    verified = Client()
    assert sign_in(verified, "carol", STRONG)["Location"] == OVERVIEW_URL
    assert is_signed_in(verified)


def test_open_sign_up_refuses_weak_passwords_and_taken_addresses(client, settings, user):
    settings.IDP_SIGNUP_OPEN = True
    client.get(SIGNUP_URL)
    weak = client.post(
        SIGNUP_URL,
        {
            "username": "dave",
            "email": "dave@example.com",
            "password1": "q1w2e3r4t5y6",
            "password2": "q1w2e3r4t5y6",
        },
    )
    assert weak.status_code == HTTPStatus.OK
    assert "too common" in weak.content.decode()
    assert not get_user_model().objects.filter(username="dave").exists()

    # An address already in use: no second account, and the page does not say whose it is.
    taken = _sign_up(client, username="mallory", email="alice@example.com")
    assert not get_user_model().objects.filter(username="mallory").exists() or not (
        EmailAddress.objects.filter(email="alice@example.com", user__username="mallory").exists()
    )
    assert taken.status_code in (HTTPStatus.OK, HTTPStatus.FOUND)


def test_create_user_and_createsuperuser_users_sign_in_without_verification(db):
    User = get_user_model()
    User.objects.create_user("Bill", "bills_email@example.com", "pw")
    User.objects.create_superuser("boss", "boss@example.com", "pw")
    for login in ["Bill", "bills_email@example.com", "boss"]:
        client = Client()
        assert sign_in(client, login, "pw")["Location"] == OVERVIEW_URL, login
        assert is_signed_in(client)
    assert EmailAddress.objects.get(email="bills_email@example.com").verified


def test_create_user_without_email_still_signs_in(db):
    get_user_model().objects.create_user("noemail", password="pw")
    client = Client()
    assert sign_in(client, "noemail", "pw")["Location"] == OVERVIEW_URL
