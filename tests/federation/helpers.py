"""A person's browser at the upstream IdP: follows the authorization request, signs in (with a
one-time code when asked), and hands back where the upstream sends them (our callback)."""

from __future__ import annotations

import re
from http import HTTPStatus
from urllib.parse import parse_qs, urljoin, urlsplit

import pyotp
import requests

from tests.federation.upstream_server import TOTP_SECRET, UPSTREAM_PASSWORD


def _csrf(html: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert token, html[:500]
    return token.group(1)


def sign_in_upstream(authorize_url: str, base: str, username: str, *, totp: bool = False) -> str:
    """Returns the first URL outside the upstream (the brokering IdP's callback)."""
    browser = requests.Session()
    url = authorize_url
    for _ in range(12):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == HTTPStatus.OK:
            if 'name="password"' in response.text:
                data = {"login": username, "password": UPSTREAM_PASSWORD}
            elif 'name="code"' in response.text and totp:
                data = {"code": pyotp.TOTP(TOTP_SECRET).now()}
            else:
                raise AssertionError(response.text[:800])
            response = browser.post(
                url,
                data={"csrfmiddlewaretoken": _csrf(response.text), **data},
                headers={"Referer": url},
                allow_redirects=False,
                timeout=10,
            )
        assert response.status_code == HTTPStatus.FOUND, response.text[:500]
        url = urljoin(url, response.headers["Location"])
        if not url.startswith(base):
            return url
    raise AssertionError("too many redirects at the upstream")


def query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"
