"""JSON logs: one line per request and per audit event, a request id, and never a secret."""

from __future__ import annotations

import base64
import hashlib
import secrets
from http import HTTPStatus
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from accounts.audit import record_event
from accounts.models import AuditEvent
from tests.oidc.conftest import WEB_REDIRECT_URI, basic_auth
from tests.oidc.conftest import web_client as web_client


@pytest.mark.django_db
def test_one_json_line_per_request_with_the_fields_operators_need(captured_logs, user):
    browser = Client()
    browser.force_login(user)
    response = browser.get("/accounts/email/")
    assert response.status_code == HTTPStatus.OK

    (line,) = captured_logs.records("idp.request")
    assert line["message"] == "request"
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["path"] == "/accounts/email/"
    assert line["url_name"] == "account_email"
    assert line["status"] == HTTPStatus.OK
    assert isinstance(line["duration_ms"], float)
    assert line["client_ip"] == "127.0.0.1"
    assert line["user_id"] == user.pk
    assert line["request_id"] == response["X-Request-ID"]
    assert len(line["request_id"]) == 32


@pytest.mark.django_db
def test_each_request_gets_its_own_generated_id(captured_logs):
    first = Client().get("/accounts/login/")["X-Request-ID"]
    second = Client().get("/accounts/login/")["X-Request-ID"]
    assert first != second
    assert [line["request_id"] for line in captured_logs.records("idp.request")] == [first, second]


@pytest.mark.django_db
def test_anonymous_requests_log_no_user_and_do_not_load_a_session(captured_logs):
    Client().get("/healthz")  # probes are answered before the access log: not logged
    post_form("/o/token/", {"grant_type": "client_credentials"})
    (line,) = captured_logs.records("idp.request")
    assert line["url_name"] == "oauth2_provider:token"
    assert line["user_id"] is None


@pytest.mark.django_db
def test_proxy_request_id_is_kept_only_from_a_trusted_proxy(settings, captured_logs):
    proxy_id = "0f8c2b9e4d6a4c1e9a7b3d5f1e2c4a6b"
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    trusted = Client().get(
        "/accounts/login/", HTTP_X_REQUEST_ID=proxy_id, HTTP_X_FORWARDED_FOR="198.51.100.7"
    )
    assert trusted["X-Request-ID"] == proxy_id

    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    untrusted = Client().get("/accounts/login/", HTTP_X_REQUEST_ID=proxy_id)
    assert untrusted["X-Request-ID"] != proxy_id


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forged",
    ['abc" "level": "CRITICAL', "short", "x" * 129, "line\nbreak-injected-0001", "a b c d e f g h"],
)
def test_malformed_request_ids_are_replaced(settings, forged):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    good = Client().get("/accounts/login/", HTTP_X_REQUEST_ID="req-0123456789abcdef")
    assert good["X-Request-ID"] == "req-0123456789abcdef"
    response = Client().get("/accounts/login/", HTTP_X_REQUEST_ID=forged)
    assert response["X-Request-ID"] != forged
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_query_strings_never_reach_the_access_log(captured_logs):
    secret_values = {
        "code": "code-" + secrets.token_urlsafe(16),
        "state": "state-" + secrets.token_urlsafe(16),
        "id_token_hint": "hint-" + secrets.token_urlsafe(16),
        "access_token": "at-" + secrets.token_urlsafe(16),
    }
    Client().get("/accounts/login/", secret_values)
    Client().get("/o/logout/", secret_values)
    lines = captured_logs.records("idp.request")
    assert [line["path"] for line in lines] == ["/accounts/login/", "/o/logout/"]
    for value in secret_values.values():
        assert value not in captured_logs.text


@pytest.mark.django_db
def test_audit_events_are_logged_with_the_request_id(captured_logs, user):
    event = record_event(type=AuditEvent.Type.LOGIN_FAILED, subject=user, reason="bad_password")
    (line,) = captured_logs.records("idp.audit")
    assert line["event"] == "login.failed"
    assert line["audit_id"] == event.pk
    assert line["subject_id"] == user.pk
    assert line["details"] == {"reason": "bad_password"}
    assert line["request_id"] == ""  # outside a request


@pytest.mark.django_db
def test_audit_lines_inside_a_request_carry_its_request_id(captured_logs, user, password):
    response = Client().post("/accounts/login/", {"login": "alice", "password": "wrong" * 4})
    assert response.status_code == HTTPStatus.OK
    request_id = response["X-Request-ID"]
    audit_lines = captured_logs.records("idp.audit")
    assert audit_lines, "a failed sign-in writes an audit event"
    assert {line["request_id"] for line in audit_lines} == {request_id}


def post_form(url: str, data: dict[str, str], **headers: str):
    return Client().post(
        url, urlencode(data), content_type="application/x-www-form-urlencoded", **headers
    )


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.django_db
def test_sign_in_and_token_requests_leave_no_secret_in_the_logs(
    captured_logs, user, password, web_client
):
    browser = Client()
    verifier, challenge = _pkce()
    state = "state-" + secrets.token_urlsafe(16)
    nonce = "nonce-" + secrets.token_urlsafe(16)
    authorize = {
        "response_type": "code",
        "client_id": web_client.client_id,
        "redirect_uri": WEB_REDIRECT_URI,
        "scope": "openid profile email offline_access",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    # Sign in with the password through the real login form.
    response = browser.post("/accounts/login/", {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND, response.content[:300]
    response = browser.get("/o/authorize/", authorize)
    if response.status_code == HTTPStatus.OK:
        response = browser.post("/o/authorize/", {**authorize, "allow": "Allow"})
    assert response.status_code == HTTPStatus.FOUND
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]

    auth = basic_auth(web_client.client_id, web_client.test_secret)
    tokens = post_form(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": WEB_REDIRECT_URI,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=auth,
    )
    assert tokens.status_code == HTTPStatus.OK, tokens.content
    issued = tokens.json()
    refreshed = post_form(
        "/o/token/",
        {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        HTTP_AUTHORIZATION=auth,
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    userinfo = Client().get(
        "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access_token']}"
    )
    assert userinfo.status_code == HTTPStatus.OK
    # A failed attempt with the secret in the body must not leak either.
    post_form(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": web_client.client_id,
            "client_secret": web_client.test_secret,
        },
    )

    text = captured_logs.text
    assert len(captured_logs.records("idp.request")) >= 6
    forbidden = {
        "password": password,
        "client secret": web_client.test_secret,
        "code": code,
        "code verifier": verifier,
        "state": state,
        "nonce": nonce,
        "access token": issued["access_token"],
        "refresh token": issued["refresh_token"],
        "id token": issued["id_token"],
        "refreshed access token": refreshed.json()["access_token"],
        "refreshed refresh token": refreshed.json()["refresh_token"],
    }
    for name, value in forbidden.items():
        assert value not in text, f"the {name} was logged"
    # The signature part of a JWT alone must not appear either.
    assert issued["id_token"].rsplit(".", 1)[1] not in text
