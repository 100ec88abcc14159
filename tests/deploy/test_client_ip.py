"""`idp.client_ip.client_ip` answers exactly what allauth's `get_client_ip` answers (the address
its rate limits key on), for every proxy configuration, except where allauth raises: a
forwarded chain shorter than the trusted proxy count falls back to REMOTE_ADDR."""

from __future__ import annotations

import pytest
from allauth.core.internal.httpkit import get_client_ip
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory

from idp.client_ip import client_ip

FORWARDED = [
    None,
    "",
    "203.0.113.7",
    "198.51.100.1, 203.0.113.7",
    "10.0.0.1,198.51.100.1, 203.0.113.7",
    " 2001:db8::1 ",
    "[2001:db8::2]:443, 203.0.113.7",
    "203.0.113.7:8080",
    "not-an-address, 203.0.113.7",
    "198.51.100.1, garbage",
]
REMOTE = ["127.0.0.1", "::1", "192.0.2.10", "", "bogus"]


@pytest.mark.parametrize("proxies", [0, 1, 2, 3])
@pytest.mark.parametrize("forwarded", FORWARDED)
@pytest.mark.parametrize("remote", REMOTE)
def test_same_address_as_allauth_behind_trusted_proxies(settings, proxies, forwarded, remote):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = proxies
    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = None
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/", **extra)
    try:
        expected = get_client_ip(request) or None
    except ImproperlyConfigured:
        expected = remote or None  # too short a chain: none of it is trusted
    assert client_ip(request) == expected


@pytest.mark.parametrize("header", ["X-Real-IP", "CF-Connecting-IP", "x-client-ip"])
@pytest.mark.parametrize("value", [None, "203.0.113.9", "2001:db8::9", "garbage", ""])
def test_same_address_as_allauth_from_a_trusted_client_ip_header(settings, header, value):
    settings.ALLAUTH_TRUSTED_CLIENT_IP_HEADER = header
    extra = {"REMOTE_ADDR": "192.0.2.10", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
    if value is not None:
        extra["HTTP_" + header.upper().replace("-", "_")] = value
    request = RequestFactory().get("/", **extra)
    assert client_ip(request) == (get_client_ip(request) or None)


def test_no_request_no_address():
    assert client_ip(None) is None
