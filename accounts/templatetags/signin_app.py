"""The app a sign-in serves: named, with its logo, when the sign-in page was reached from an
authorization request (`?next=/o/authorize/?client_id=...`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django import template
from django.urls import reverse

from oauth_clients.client_cache import get_client

register = template.Library()

# DOT's client_id column is 100 characters; a longer value names no registered app.
CLIENT_ID_MAX_LENGTH = 100


def authorize_client_id(next_url: Any) -> str:
    """The one `client_id` of an authorization request on this site, or "" for anything else.

    Only a site path to the authorization endpoint counts (as
    `oauth_clients.oidc.backend.login_hint` reads `login_hint`): never another host, and never a
    repeated or unprintable value.
    """
    if not isinstance(next_url, str) or not next_url:
        return ""
    parsed = urlsplit(next_url)
    if parsed.scheme or parsed.netloc or parsed.path != reverse("oauth2_provider:authorize"):
        return ""
    values = parse_qs(parsed.query).get("client_id", [])
    client_id = values[0] if len(values) == 1 else ""
    if len(client_id) > CLIENT_ID_MAX_LENGTH or not client_id.isprintable():
        return ""
    return client_id


@register.simple_tag
def signin_app(next_url: Any) -> Any:
    """The active registered client the sign-in continues to, or None.

    Only when `next` is an authorization request, and through the client cache the token
    side uses (the authorization request just before this page read the same client): at most
    one query, none when the cache holds it. The page prints the registered name and logo,
    never the request's own text.
    """
    client_id = authorize_client_id(next_url)
    if not client_id:
        return None
    client = get_client(client_id)
    return client if client is not None and client.is_active else None
