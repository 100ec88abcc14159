"""The app a sign-in serves: named, with its logo, when the sign-in page was reached from an
authorization request (`?next=/o/authorize/?client_id=...`)."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.signin_request import authorize_parameter
from oauth_clients.client_cache import get_client

register = template.Library()

# DOT's client_id column is 100 characters; a longer value names no registered app.
CLIENT_ID_MAX_LENGTH = 100


def authorize_client_id(next_url: Any) -> str:
    """The one `client_id` of the authorization request the sign-in serves, or "" (never
    another host, a repeated or an unprintable value)."""
    return authorize_parameter(next_url, "client_id", max_length=CLIENT_ID_MAX_LENGTH)


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
