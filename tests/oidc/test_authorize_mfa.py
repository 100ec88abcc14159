"""Client.requires_mfa: the app only gets users whose session used a second factor."""

from __future__ import annotations

import time
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)

from oauth_clients.models import Grant
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query
from tests.oidc.conftest import WEB_REDIRECT_URI, make_client

PAYROLL_REDIRECT_URI = "https://payroll.example.com/callback"


@pytest.fixture
def payroll(db):
    return make_client(
        name="Payroll",
        client_id="payroll",
        secret="payroll-secret-" + "p" * 30,
        redirect_uris=PAYROLL_REDIRECT_URI,
        is_trusted=True,
        requires_mfa=True,
    )


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(iter(yield_hotp_counters_from_time()))))


def record_second_factor(client, user) -> None:
    session = client.session
    now = time.time()
    session["account_authentication_methods"] = [
        {"method": "password", "at": now - 10},
        {"method": "mfa", "type": "totp", "at": now - 5, "id": 1},
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


def test_session_with_a_second_factor_signs_in(client, user, payroll):
    client.force_login(user)
    record_second_factor(client, user)
    query = redirect_query(
        client.get(AUTHORIZE_URL, authorization_params(payroll)), PAYROLL_REDIRECT_URI
    )
    assert query["code"]
    assert Grant.objects.get().amr == ["mfa", "otp", "pwd"]


def test_password_only_user_without_mfa_is_told_to_set_it_up(client, user, payroll, web_client):
    client.force_login(user)
    # Positive path: an app without the requirement lets the same session in.
    assert redirect_query(
        client.get(AUTHORIZE_URL, authorization_params(web_client)), WEB_REDIRECT_URI
    )["code"]
    response = client.get(AUTHORIZE_URL, authorization_params(payroll))
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not response.has_header("Location")
    body = response.content.decode()
    assert "Two-step verification required" in body
    assert 'href="/accounts/2fa/"' in body
    assert not Grant.objects.filter(application=payroll).exists()


def test_user_with_totp_enters_a_code_and_the_request_continues(client, user, payroll):
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    client.force_login(user)
    response = client.get(AUTHORIZE_URL, authorization_params(payroll))
    assert response.status_code == HTTPStatus.FOUND
    location = response["Location"]
    assert urlsplit(location).path == "/accounts/2fa/reauthenticate/"
    assert client.get(location).status_code == HTTPStatus.OK
    verified = client.post(location, {"code": current_code(secret)})
    assert verified.status_code == HTTPStatus.FOUND, verified.content[:300]
    query = redirect_query(client.get(verified["Location"]), PAYROLL_REDIRECT_URI)
    assert query["code"]
    assert "mfa" in Grant.objects.get(application=payroll).amr


def test_wrong_totp_code_issues_nothing(client, user, payroll):
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    location = client.get(AUTHORIZE_URL, authorization_params(payroll))["Location"]
    assert client.post(location, {"code": "000000"}).status_code == HTTPStatus.OK
    assert not Grant.objects.exists()


@pytest.mark.spec("OpenID Connect Core 1.0", "3.1.2.6")
def test_prompt_none_without_a_second_factor_answers_login_required(client, user, payroll):
    client.force_login(user)
    params = authorization_params(payroll, prompt="none")
    error = redirect_query(client.get(AUTHORIZE_URL, params), PAYROLL_REDIRECT_URI)
    assert error["error"] == "login_required"
    record_second_factor(client, user)
    assert redirect_query(client.get(AUTHORIZE_URL, params), PAYROLL_REDIRECT_URI)["code"]
