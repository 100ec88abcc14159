"""Forwarded headers count only behind a configured number of trusted proxies.

IDP_TRUSTED_PROXY_COUNT unset: X-Forwarded-For is the client's own claim and is ignored by audit
rows, rate limits and the access log. Set: the hop the nearest trusted proxy appended is the client.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory

from accounts.audit import record_event
from accounts.models import AuditEvent

PROXY = "10.0.0.2"  # the reverse proxy's own address, as the app sees it
CLIENT = "198.51.100.7"
SPOOFED = "203.0.113.66"


@pytest.fixture(autouse=True)
def _clean_rate_limits():
    cache.clear()
    yield
    cache.clear()


def audit_ip(xff: str) -> str | None:
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=xff)
    return record_event(type=AuditEvent.Type.LOGIN_FAILED, request=request).ip


@pytest.mark.django_db
def test_without_trusted_proxy_audit_rows_ignore_forwarded_for(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    assert audit_ip(CLIENT) == PROXY
    assert audit_ip(f"{SPOOFED}, {CLIENT}") == PROXY


@pytest.mark.django_db
def test_with_one_trusted_proxy_audit_rows_take_the_hop_it_appended(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    assert audit_ip(CLIENT) == CLIENT
    # A client that sends its own X-Forwarded-For only prepends to what the proxy appends.
    assert audit_ip(f"{SPOOFED}, {CLIENT}") == CLIENT


@pytest.mark.django_db
def test_with_two_trusted_proxies_the_second_hop_from_the_right_is_the_client(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 2
    assert audit_ip(f"{SPOOFED}, {CLIENT}, 10.0.0.9") == CLIENT
    # Fewer hops than trusted proxies: nothing in the header is trusted.
    assert audit_ip(CLIENT) == PROXY


def attempt_login(*, xff: str | None = None) -> int:
    headers = {"REMOTE_ADDR": PROXY}
    if xff is not None:
        headers["HTTP_X_FORWARDED_FOR"] = xff
    response = Client(**headers).post(
        "/accounts/login/", {"login": "nobody", "password": "not the password"}
    )
    return response.status_code


@pytest.mark.django_db
def test_without_trusted_proxy_rate_limits_key_on_the_socket_address(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    assert attempt_login(xff="192.0.2.1") == HTTPStatus.OK
    assert attempt_login(xff="192.0.2.2") == HTTPStatus.OK
    # A fresh X-Forwarded-For per attempt does not buy a fresh budget.
    assert attempt_login(xff="192.0.2.3") == HTTPStatus.TOO_MANY_REQUESTS


@pytest.mark.django_db
def test_with_trusted_proxy_rate_limits_key_on_the_real_client(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    assert attempt_login(xff=CLIENT) == HTTPStatus.OK
    assert attempt_login(xff=f"{SPOOFED}, {CLIENT}") == HTTPStatus.OK
    # The same real client is limited whatever it prepends …
    assert attempt_login(xff=f"192.0.2.99, {CLIENT}") == HTTPStatus.TOO_MANY_REQUESTS
    # … while another client behind the same proxy is not.
    assert attempt_login(xff="198.51.100.8") == HTTPStatus.OK


@pytest.mark.django_db
def test_access_log_uses_the_same_client_address(settings, captured_logs):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 0
    Client(REMOTE_ADDR=PROXY).get("/accounts/login/", HTTP_X_FORWARDED_FOR=CLIENT)
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    Client(REMOTE_ADDR=PROXY).get("/accounts/login/", HTTP_X_FORWARDED_FOR=CLIENT)
    assert [line["client_ip"] for line in captured_logs.records("idp.request")] == [PROXY, CLIENT]


@pytest.mark.django_db
def test_scheme_comes_from_the_proxy_only_when_one_is_trusted(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = None
    # No trusted proxy: a client claiming https is still redirected to https.
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == HTTPStatus.MOVED_PERMANENTLY
    # Trusted proxy (settings derive SECURE_PROXY_SSL_HEADER from IDP_TRUSTED_PROXY_COUNT).
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    response = Client().get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == HTTPStatus.OK
