"""The requests session allauth sends through (oauth_clients.outbound.safe_session): checked,
pinned, bounded, never redirected."""

from __future__ import annotations

import pytest
import requests

from oauth_clients.outbound import safe_session
from tests.federation.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def fake():
    provider = FakeProvider().start()
    provider.reset()
    yield provider
    provider.stop()


def session(*, private: bool, max_bytes: int = 1024 * 1024) -> requests.Session:
    return safe_session(allow_private_network=lambda url: private, timeout=2, max_bytes=max_bytes)


def test_an_allowed_answer_is_read_with_its_headers(fake):
    response = session(private=True).get(f"{fake.url}/jwks")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["keys"][0]["kid"] == fake.kid


def test_a_loopback_address_is_refused_unless_allowed(fake):
    with pytest.raises(requests.ConnectionError, match="refused"):
        session(private=False).get(f"{fake.url}/jwks")


def test_an_answer_larger_than_the_limit_is_refused(fake):
    with pytest.raises(requests.ConnectionError, match="larger than 100 bytes"):
        session(private=True, max_bytes=100).get(f"{fake.url}/jwks")


def test_a_redirect_is_never_followed(fake):
    fake.discovery_status = 302
    try:
        with pytest.raises(requests.TooManyRedirects):
            session(private=True).get(f"{fake.url}/.well-known/openid-configuration")
    finally:
        fake.discovery_status = 200


def test_proxies_from_the_environment_are_ignored(fake, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    response = session(private=True).get(f"{fake.url}/jwks")
    assert response.status_code == 200
