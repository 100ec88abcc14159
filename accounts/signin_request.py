"""What the sign-in page knows of the authorization request it serves: the request rides in its
`next` (`/accounts/login/?next=/o/authorize/?...`), so nothing is stored. Only a path of this
site to the authorization endpoint counts, and one printable value of a parameter."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.urls import reverse


def authorize_parameter(next_url: Any, name: str, *, max_length: int) -> str:
    """The one value of `name` in the authorization request `next_url`, or "" for anything else
    (another host, a repeated, overlong or unprintable value)."""
    if not isinstance(next_url, str) or not next_url:
        return ""
    parsed = urlsplit(next_url)
    if parsed.scheme or parsed.netloc or parsed.path != reverse("oauth2_provider:authorize"):
        return ""
    values = parse_qs(parsed.query).get(name, [])
    value = values[0].strip() if len(values) == 1 else ""
    if len(value) > max_length or not value.isprintable():
        return ""
    return value
