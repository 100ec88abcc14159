"""The device authorization grant (RFC 8628) through Django's test client: the device's
requests, the person's /device pages, polling, and their bad input."""

from __future__ import annotations

import datetime as dt
import json
import re
from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
import time_machine
from django.test import Client as HttpClient
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients.models import AccessToken, Client, DeviceAuthorization, RefreshToken
from oauth_clients.oidc.authorization_policy import decode_id_token
from oauth_clients.oidc.device import USER_CODE_ALPHABET
from oauth_clients.oidc.tokens import hash_code
from oauth_clients.services import assign, set_access_policy
from tests.oidc.conftest import post_form
from tests.oidc.device_helpers import (
    approve,
    enter_code,
    outcome,
    poll,
    register_device_app,
    start,
)

pytestmark = pytest.mark.django_db

USER_CODE_RE = re.compile(f"[{USER_CODE_ALPHABET}]{{4}}-[{USER_CODE_ALPHABET}]{{4}}")


@pytest.fixture
def device_app(db) -> Client:
    return register_device_app()


@pytest.fixture
def browser(user) -> HttpClient:
    http = HttpClient()
    http.force_login(user)
    return http


def started(device_app: Client) -> dict:
    response = start(HttpClient(), device_app, scope="openid profile")
    assert response.status_code == HTTPStatus.OK, response.content
    return response.json()


def error_of(response) -> str:
    assert response.status_code == HTTPStatus.BAD_REQUEST, (response.status_code, response.content)
    assert response["Cache-Control"].count("no-store") == 1
    return response.json()["error"]


@pytest.mark.spec("RFC 8628", "3.2")
def test_a_device_gets_codes_it_can_show_and_the_store_keeps_only_their_hashes(device_app):
    codes = started(device_app)
    assert USER_CODE_RE.fullmatch(codes["user_code"]), codes["user_code"]
    assert codes["verification_uri"].endswith("/device")
    assert codes["verification_uri_complete"] == (
        f"{codes['verification_uri']}?user_code={codes['user_code']}"
    )
    assert codes["expires_in"] == 600
    assert codes["interval"] == 5
    assert len(codes["device_code"]) >= 43
    row = DeviceAuthorization.objects.get()
    assert row.device_code == hash_code(codes["device_code"])
    assert row.user_code == hash_code(codes["user_code"].replace("-", ""))
    assert row.scope == "openid profile"
    assert row.status == DeviceAuthorization.Status.PENDING
    event = AuditEvent.objects.get(type=AuditEvent.Type.DEVICE_CODE_ISSUED)
    assert event.client == device_app
    assert codes["device_code"] not in json.dumps(event.extra)


@pytest.mark.spec("RFC 8628", "3.1")
def test_a_node_style_content_type_with_charset_is_accepted(device_app):
    response = HttpClient().post(
        reverse("oauth2_provider:device-authorization"),
        f"client_id={device_app.client_id}",
        content_type="application/x-www-form-urlencoded;charset=UTF-8",
    )
    assert response.status_code == HTTPStatus.OK, response.content


@pytest.mark.spec("RFC 8628", "3.5")
@pytest.mark.spec("RFC 8628", "3.3")
def test_the_full_flow_issues_tokens_once_the_person_approves(device_app, browser, user):
    device = HttpClient()
    codes = started(device_app)
    assert error_of(poll(device, device_app.client_id, codes["device_code"])) == (
        "authorization_pending"
    )

    # The person opens verification_uri_complete: the code is filled in, they still confirm.
    complete = urlsplit(codes["verification_uri_complete"])
    page = browser.get(f"{complete.path}?{complete.query}")
    assert page.status_code == HTTPStatus.OK
    assert codes["user_code"] in page.content.decode()
    # Typed in lower case without the dash: the same code (RFC 8628 §6.1).
    typed = codes["user_code"].replace("-", "").lower()
    entered = enter_code(browser, typed)
    assert entered["Location"] == reverse("oauth2_provider:device-confirm")
    confirm = browser.get(entered["Location"]).content.decode()
    assert "Deploy CLI" in confirm
    assert "https://cli.example.com/logo.png" in confirm
    assert "Was this you?" in confirm
    assert "own device" in confirm
    decided = browser.post(reverse("oauth2_provider:device-confirm"), {"allow": "allow"})
    assert outcome(decided) == "approved"
    done = browser.get(decided["Location"])
    assert done.status_code == HTTPStatus.OK
    assert 'data-outcome="approved"' in done.content.decode()

    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=6), tick=False):
        tokens = poll(device, device_app.client_id, codes["device_code"])
    assert tokens.status_code == HTTPStatus.OK, tokens.content
    body = tokens.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile"
    assert body["refresh_token"]
    claims = decode_id_token(body["id_token"], issuer=None, accept_expired=False)
    assert claims["sub"] == str(user.pk)
    assert claims["aud"] == device_app.client_id
    assert "sid" not in claims, "the device is not bound to the approving browser session"
    access = AccessToken.objects.get(user=user)
    assert access.application == device_app
    assert access.code_checksum == hash_code(codes["device_code"])

    types = list(
        AuditEvent.objects.filter(client=device_app)
        .exclude(type=AuditEvent.Type.CLIENT_CREATED)
        .order_by("id")
        .values_list("type", flat=True)
    )
    assert types == [
        AuditEvent.Type.DEVICE_CODE_ISSUED,
        AuditEvent.Type.CONSENT_GRANTED,
        AuditEvent.Type.DEVICE_APPROVED,
        AuditEvent.Type.TOKENS_ISSUED,
    ]
    issued = AuditEvent.objects.get(type=AuditEvent.Type.TOKENS_ISSUED)
    assert issued.extra["grant"] == "device_code"
    assert issued.subject == user

    # Its refresh token works like any other (RFC 6749 §6), rotated.
    refreshed = post_form(
        device,
        reverse("oauth2_provider:token"),
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": device_app.client_id,
        },
    )
    assert refreshed.status_code == HTTPStatus.OK, refreshed.content
    assert refreshed.json()["refresh_token"] != body["refresh_token"]


@pytest.mark.spec("RFC 8628", "3.5")
def test_a_denied_code_tells_the_device_access_denied(device_app, browser, user):
    codes = started(device_app)
    decided = approve(browser, codes["user_code"], decision="deny")
    assert outcome(decided) == "denied"
    assert error_of(poll(HttpClient(), device_app.client_id, codes["device_code"])) == (
        "access_denied"
    )
    event = AuditEvent.objects.get(type=AuditEvent.Type.DEVICE_DENIED)
    assert (event.actor, event.client) == (user, device_app)


@pytest.mark.spec("RFC 8628", "3.5")
def test_polling_faster_than_the_interval_slows_the_device_down_for_good(device_app):
    device = HttpClient()
    codes = started(device_app)
    start_at = dt.datetime.now(tz=dt.UTC)

    def poll_at(seconds: float) -> str:
        with time_machine.travel(start_at + dt.timedelta(seconds=seconds), tick=False):
            return error_of(poll(device, device_app.client_id, codes["device_code"]))

    assert poll_at(0) == "authorization_pending"
    assert poll_at(6) == "authorization_pending"  # the interval (5 s) respected
    assert poll_at(7) == "slow_down"  # 1 s later: the interval is now 10 s
    assert poll_at(15) == "slow_down"  # 8 s < 10 s: now 15 s
    assert poll_at(31) == "authorization_pending"  # 16 s ≥ 15 s
    assert poll_at(42) == "slow_down", "the longer interval stays"


@pytest.mark.spec("RFC 8628", "3.5")
def test_an_expired_code_answers_expired_token_and_cannot_be_entered(device_app, browser):
    codes = started(device_app)
    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=601)
    with time_machine.travel(later, tick=False):
        assert error_of(poll(HttpClient(), device_app.client_id, codes["device_code"])) == (
            "expired_token"
        )
        refused = enter_code(browser, codes["user_code"])
    assert refused.status_code == HTTPStatus.OK
    assert "not right or has expired" in refused.content.decode()


@pytest.mark.spec("RFC 8628", "3.4")
@pytest.mark.spec("RFC 6749", "5.2")
def test_a_device_code_presented_by_another_client_is_an_invalid_grant(device_app, browser):
    codes = started(device_app)
    approve(browser, codes["user_code"])
    other = register_device_app(name="Other CLI")
    stolen = poll(HttpClient(), other.client_id, codes["device_code"])
    assert error_of(stolen) == "invalid_grant"
    assert not AccessToken.objects.exists()
    # The rightful device still gets its tokens.
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=6), tick=False):
        assert poll(HttpClient(), device_app.client_id, codes["device_code"]).status_code == (
            HTTPStatus.OK
        )


@pytest.mark.spec("RFC 8628", "3.5")
def test_a_device_code_is_used_once_and_a_replay_revokes_what_it_issued(device_app, browser):
    codes = started(device_app)
    approve(browser, codes["user_code"])
    first = poll(HttpClient(), device_app.client_id, codes["device_code"])
    assert first.status_code == HTTPStatus.OK
    assert AccessToken.objects.count() == 1
    again = poll(HttpClient(), device_app.client_id, codes["device_code"])
    assert error_of(again) == "invalid_grant"
    assert not AccessToken.objects.exists()
    assert not RefreshToken.objects.filter(revoked__isnull=True).exists()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.TOKEN_REPLAY).exists()


@pytest.mark.spec("RFC 8628", "5.1")
def test_twenty_wrong_user_codes_from_one_address_get_a_clear_refusal(device_app, browser, user):
    # The positive path first: a right code is taken.
    codes = started(device_app)
    assert enter_code(browser, codes["user_code"]).status_code == HTTPStatus.FOUND
    other = started(device_app)
    wrong = "BBBB-BBBB" if other["user_code"] != "BBBB-BBBB" else "CCCC-CCCC"
    for _attempt in range(20):
        answer = enter_code(browser, wrong)
        assert answer.status_code == HTTPStatus.OK
        assert "not right or has expired" in answer.content.decode()
    refused = enter_code(browser, other["user_code"])  # even a right one, from this address
    assert refused.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert "Too many wrong codes" in refused.content.decode()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.DEVICE_CODE_REFUSED).count() == 20
    # Another address is not held back.
    elsewhere = HttpClient(REMOTE_ADDR="192.0.2.7")
    elsewhere.force_login(user)
    assert enter_code(elsewhere, other["user_code"]).status_code == HTTPStatus.FOUND


@pytest.mark.spec("RFC 8628", "5.1")
def test_a_user_code_entered_too_many_times_dies(device_app, browser):
    codes = started(device_app)
    for _entry in range(5):
        assert enter_code(browser, codes["user_code"]).status_code == HTTPStatus.FOUND
    dead = enter_code(browser, codes["user_code"])
    assert "entered too many times" in dead.content.decode()
    assert error_of(poll(HttpClient(), device_app.client_id, codes["device_code"])) == (
        "expired_token"
    )


def test_a_person_the_app_is_not_open_to_gets_the_no_access_answer(device_app, browser, user):
    set_access_policy(client=device_app, policy=Client.AccessPolicy.ASSIGNED, actor=None)
    codes = started(device_app)
    entered = enter_code(browser, codes["user_code"])
    page = browser.get(entered["Location"])
    assert page.status_code == HTTPStatus.FORBIDDEN
    assert "have access to Deploy CLI" in page.content.decode()
    assert AuditEvent.objects.filter(type=AuditEvent.Type.ACCESS_DENIED, subject=user).exists()
    assert error_of(poll(HttpClient(), device_app.client_id, codes["device_code"])) == (
        "access_denied"
    )
    # Once assigned, the same person gets through (a new code).
    assign(client=device_app, user=user, actor=None)
    again = started(device_app)
    assert outcome(approve(browser, again["user_code"])) == "approved"


def test_the_device_pages_ask_for_a_sign_in_first(device_app):
    codes = started(device_app)
    anonymous = HttpClient().get(f"/device?user_code={codes['user_code']}")
    assert anonymous.status_code == HTTPStatus.FOUND
    assert anonymous["Location"].startswith("/accounts/login/")
    assert "user_code" in anonymous["Location"]


def test_the_confirm_page_without_an_entered_code_says_so(browser):
    page = browser.get(reverse("oauth2_provider:device-confirm"))
    assert page.status_code == HTTPStatus.BAD_REQUEST
    assert "not right or has expired" in page.content.decode()


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"client_id": "nobody"}, HTTPStatus.UNAUTHORIZED, "invalid_client"),
        ({}, HTTPStatus.BAD_REQUEST, "invalid_request"),
        ({"client_id": "spa-app"}, HTTPStatus.BAD_REQUEST, "unauthorized_client"),
        (
            {"client_id": "{device}", "scope": "openid admin"},
            HTTPStatus.BAD_REQUEST,
            "invalid_scope",
        ),
        (
            {"client_id": "{device}", "client_id\x00": "x"},
            HTTPStatus.BAD_REQUEST,
            "invalid_request",
        ),
    ],
    ids=["unknown client", "no client", "not a device app", "scope not allowed", "NUL"],
)
@pytest.mark.spec("RFC 8628", "3.1")
def test_the_device_authorization_endpoint_refuses_bad_requests(
    device_app, spa_client, data, status, error
):
    assert start(HttpClient(), device_app).status_code == HTTPStatus.OK  # positive path first
    filled = {key: value.replace("{device}", device_app.client_id) for key, value in data.items()}
    response = post_form(HttpClient(), reverse("oauth2_provider:device-authorization"), filled)
    assert response.status_code == status, response.content
    assert response.json()["error"] == error


def test_the_device_authorization_endpoint_answers_post_only(device_app):
    response = HttpClient().get(reverse("oauth2_provider:device-authorization"))
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["error"] == "invalid_request"


@pytest.mark.spec("RFC 8628", "4")
def test_discovery_advertises_the_device_endpoint_and_grant(client):
    metadata = client.get("/.well-known/openid-configuration").json()
    assert metadata["device_authorization_endpoint"].endswith("/o/device-authorization/")
    assert "urn:ietf:params:oauth:grant-type:device_code" in metadata["grant_types_supported"]


@pytest.mark.spec("RFC 8628", "3.5")
def test_a_pending_poll_costs_one_indexed_query_among_a_thousand_devices(
    device_app, django_assert_max_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    DeviceAuthorization.objects.bulk_create(
        DeviceAuthorization(
            application=device_app,
            device_code=hash_code(f"device-{n}"),
            user_code=hash_code(f"user-{n}"),
            expires=now + timedelta(minutes=10),
        )
        for n in range(1000)
    )
    device = HttpClient()
    codes = started(device_app)
    poll(device, device_app.client_id, codes["device_code"])  # last_used_at stamped: steady
    later = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=6)
    with time_machine.travel(later, tick=False), django_assert_max_num_queries(1) as captured:
        answer = poll(device, device_app.client_id, codes["device_code"])
    assert error_of(answer) == "authorization_pending"
    (query,) = captured.captured_queries
    assert "device_code" in query["sql"]
    # Found through the unique index on the device code's hash, not a scan of the 1,001 rows.
    plan = DeviceAuthorization.objects.filter(device_code=hash_code(codes["device_code"])).explain()
    assert "index" in plan.lower(), plan


@pytest.mark.spec("RFC 8628", "3.4")
def test_a_poll_without_a_device_code_is_an_invalid_request(device_app):
    codes = started(device_app)
    assert error_of(poll(HttpClient(), device_app.client_id, codes["device_code"])) == (
        "authorization_pending"
    )
    assert error_of(poll(HttpClient(), device_app.client_id, "")) == "invalid_request"
    assert error_of(poll(HttpClient(), device_app.client_id, "not-a-code")) == "invalid_grant"


def test_purge_tokens_removes_expired_device_authorizations(device_app):
    from io import StringIO

    from django.core.management import call_command

    live = started(device_app)
    with time_machine.travel(dt.datetime.now(tz=dt.UTC) + dt.timedelta(hours=1), tick=False):
        started(device_app)
        out = StringIO()
        call_command("purge_tokens", "--margin=0", stdout=out)
    assert "device_codes: 1" in out.getvalue()
    assert list(DeviceAuthorization.objects.values_list("device_code", flat=True)) != [
        hash_code(live["device_code"])
    ]
    assert DeviceAuthorization.objects.count() == 1


def test_an_app_that_requires_a_second_factor_asks_for_it_before_the_decision(browser, user):
    from tests.accounts.conftest import MFA_REAUTHENTICATE_URL, enable_totp

    strict = register_device_app(name="Payroll CLI", requires_mfa=True)
    codes = started(strict)
    entered = enter_code(browser, codes["user_code"])
    # No second factor yet: told how to set one up; nothing is decided.
    page = browser.get(entered["Location"])
    assert page.status_code == HTTPStatus.FORBIDDEN
    assert "Two-step verification required" in page.content.decode()
    assert DeviceAuthorization.objects.get().status == DeviceAuthorization.Status.PENDING
    # With one, this password-only session is sent to prove it, and comes back here.
    enable_totp(user)
    step_up = browser.get(entered["Location"])
    assert step_up.status_code == HTTPStatus.FOUND
    assert step_up["Location"].startswith(MFA_REAUTHENTICATE_URL)
    assert "next=%2Fdevice%2Fconfirm" in step_up["Location"]
    allowed = browser.post(reverse("oauth2_provider:device-confirm"), {"allow": "allow"})
    assert allowed.status_code == HTTPStatus.FOUND
    assert allowed["Location"].startswith(MFA_REAUTHENTICATE_URL), "no approval without it"
    assert DeviceAuthorization.objects.get().status == DeviceAuthorization.Status.PENDING
