"""Sensitive actions need a recent authentication (ACCOUNT_REAUTHENTICATION_TIMEOUT): a sign-in or
re-authentication within it; after it, allauth asks for the password or a code again."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client
from django.utils import timezone

from tests.accounts.conftest import (
    CHANGE_URL,
    MFA_REAUTHENTICATE_URL,
    REAUTHENTICATE_URL,
    TOTP_ACTIVATE_URL,
    enable_totp,
    sign_in,
    sign_in_with_totp,
    totp_code,
)

pytestmark = pytest.mark.django_db

EMAIL_URL = "/accounts/email/"
DEACTIVATE_TOTP_URL = "/accounts/2fa/totp/deactivate/"


@pytest.fixture
def clock(settings):
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def _asks_to_reauthenticate(response, path: str) -> bool:
    return response.status_code == HTTPStatus.FOUND and response["Location"] == (
        f"{REAUTHENTICATE_URL}?next={quote(path, safe='')}"
    )


@pytest.mark.parametrize("path", [TOTP_ACTIVATE_URL, CHANGE_URL, "/accounts/2fa/webauthn/add/"])
def test_a_fresh_sign_in_is_recent_enough_and_goes_stale(clock, user, password, path):
    client = Client()
    sign_in(client, "alice", password)
    assert client.get(path).status_code == HTTPStatus.OK

    clock.shift(301)
    stale = client.get(path)
    assert _asks_to_reauthenticate(stale, path), stale.get("Location")

    # The password again, and the page opens (until the timeout passes once more).
    again = client.post(stale["Location"], {"password": password})
    assert again.status_code == HTTPStatus.FOUND
    assert again["Location"] == path
    assert client.get(path).status_code == HTTPStatus.OK
    clock.shift(301)
    assert _asks_to_reauthenticate(client.get(path), path)


def test_a_wrong_password_does_not_reauthenticate(clock, user, password):
    client = Client()
    sign_in(client, "alice", password)
    clock.shift(301)
    location = client.get(CHANGE_URL)["Location"]
    refused = client.post(location, {"password": "not the password"})
    assert refused.status_code == HTTPStatus.OK
    assert _asks_to_reauthenticate(client.get(CHANGE_URL), CHANGE_URL)


def test_removing_a_factor_needs_a_recent_authentication_a_code_will_do(clock, user, password):
    secret = enable_totp(user)
    client = Client()
    sign_in_with_totp(client, "alice", password, secret)
    clock.shift(301)
    stale = client.get(DEACTIVATE_TOTP_URL)
    assert stale.status_code == HTTPStatus.FOUND
    assert stale["Location"].startswith(REAUTHENTICATE_URL)
    # allauth offers the code instead of the password.
    with_code = client.post(
        f"{MFA_REAUTHENTICATE_URL}?next={quote(DEACTIVATE_TOTP_URL, safe='')}",
        {"code": totp_code(secret)},
    )
    assert with_code["Location"] == DEACTIVATE_TOTP_URL
    assert client.post(DEACTIVATE_TOTP_URL, {}).status_code == HTTPStatus.FOUND
    assert not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


def test_changing_email_addresses_needs_a_recent_authentication(clock, user, password):
    client = Client()
    sign_in(client, "alice", password)
    assert client.get(EMAIL_URL).status_code == HTTPStatus.OK
    # Within the timeout: adding works at once.
    added = client.post(EMAIL_URL, {"action_add": "", "email": "alice@work.example"})
    assert added.status_code == HTTPStatus.FOUND
    assert EmailAddress.objects.filter(user=user, email="alice@work.example").exists()

    clock.shift(301)
    # Looking and resending a verification link stay open.
    assert client.get(EMAIL_URL).status_code == HTTPStatus.OK
    resend = client.post(EMAIL_URL, {"action_send": "", "email": "alice@work.example"})
    assert resend.status_code == HTTPStatus.FOUND
    assert resend["Location"] == EMAIL_URL
    # Removing one asks first; after the password the held request goes through.
    remove = client.post(EMAIL_URL, {"action_remove": "", "email": "alice@work.example"})
    assert _asks_to_reauthenticate(remove, EMAIL_URL)
    assert EmailAddress.objects.filter(user=user, email="alice@work.example").exists()
    resumed = client.post(remove["Location"], {"password": password})
    assert resumed.status_code == HTTPStatus.FOUND
    assert not EmailAddress.objects.filter(user=user, email="alice@work.example").exists()
    # Adding and making primary ask too.
    clock.shift(301)
    for data in (
        {"action_add": "", "email": "alice@other.example"},
        {"action_primary": "", "email": "alice@example.com"},
    ):
        assert _asks_to_reauthenticate(client.post(EMAIL_URL, data), EMAIL_URL), data
    assert not EmailAddress.objects.filter(email="alice@other.example").exists()
