"""SCIM bearer tokens: issued with 256 bits of randomness, stored as a keyed hash, looked up by it.

A keyed HMAC (oauth_clients.secrets, the client secrets' pepper) and not a password hash: the
token is long and random, so nothing is gained by a slow KDF, and a deterministic hash lets the
token be found by an indexed lookup of its hash. A leaked table without the pepper is useless.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.utils import timezone

from oauth_clients.secrets import hash_client_secret
from scim.models import ScimToken

PREFIX = "scim_"
# The row's `last_used_at` is written at most this often (one UPDATE a minute, not per request).
LAST_USED_RESOLUTION = timedelta(seconds=60)
# A longer Authorization header is no token of ours (and is not hashed).
MAX_TOKEN_LENGTH = 200


def generate_token() -> str:
    """A new token: "scim_" and 43 URL-safe characters carrying 256 bits."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hash_client_secret(token)


def find_token(presented: str) -> ScimToken | None:
    """The usable token `presented` is, or None (unknown, revoked or expired). Marks it used."""
    if not presented.startswith(PREFIX) or len(presented) > MAX_TOKEN_LENGTH:
        return None
    token = ScimToken.objects.filter(token_hash=hash_token(presented)).first()
    now = timezone.now()
    if token is None or not token.is_usable(now=now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
