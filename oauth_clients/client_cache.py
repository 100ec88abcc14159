"""Registered clients cached for the token-side hot paths, invalidated by the client services.

Every token, introspection and revocation request authenticates its client (secret hash,
grant types, `is_active`, lifetimes). Loading it through the ORM was the largest single cost of
a client-credentials grant in the profiles; reading it from the shared cache is
one round trip. (A bearer token's own client is read with the token instead, in one prepared
query: `token_policy._ACCESS_TOKEN`; so is introspection's caller, `tokens.load_caller_with_token`.)

Correctness rules:
- Only a cache every worker shares (Redis) can be invalidated for all of them, so caching is on
  when `IDP_CLIENT_CACHE_SECONDS` > 0, which settings make the default only with `REDIS_URL`.
- Every change goes through `oauth_clients.services`, which call `invalidate_clients()`; it
  runs after the change commits and bumps one registry-wide generation. An entry is served only
  if it was stored under the current generation, so a reader that loaded the old row just before
  the commit cannot put it back for later readers: its entry carries the old generation.
- Misses are never cached (a new client is found at once), and any cache failure falls back to
  the database: the cache can make a request faster, never wrong or failed.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from oauth_clients.models import Client

logger = logging.getLogger(__name__)

GENERATION_KEY = "oauth:clients:generation"
PREFIX = "oauth:client:v1:"
# The generation outlives every entry, so an entry can never outlive the generation it saw.
GENERATION_TIMEOUT = 7 * 24 * 3600


def cache_seconds() -> int:
    return int(getattr(settings, "IDP_CLIENT_CACHE_SECONDS", 0) or 0)


def _load(client_id: str) -> Client | None:
    return Client.objects.filter(client_id=client_id).first()


def _load_api(audience: str) -> Client | None:
    return Client.objects.filter(audience=audience, kind=Client.Kind.API).first()


def _key(client_id: str) -> str:
    digest = hashlib.sha256(str(client_id).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{PREFIX}id:{digest}"


def _api_key(audience: str) -> str:
    digest = hashlib.sha256(str(audience).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{PREFIX}aud:{digest}"


def _cached(wanted: list[tuple[str, Callable[[], Client | None]]]) -> list[Client | None]:
    """Each (key, loader)'s client: from the cache in one round trip when its entry was stored
    under the current generation, else from its loader (and stored for the next reader)."""
    seconds = cache_seconds()
    if seconds <= 0:
        return [load() for _key_, load in wanted]
    try:
        found = cache.get_many([GENERATION_KEY, *(key for key, _load_ in wanted)])
    except Exception:  # any cache failure: answer from the database
        logger.warning("client cache unavailable; reading the database", exc_info=True)
        return [load() for _key_, load in wanted]
    generation = found.get(GENERATION_KEY)
    answers: list[Client | None] = []
    for key, load in wanted:
        entry = found.get(key)
        if entry is not None and entry[0] == generation:
            answers.append(entry[1])
            continue
        client = load()
        if client is not None:
            try:
                cache.set(key, (generation, client), timeout=seconds)
            except Exception:  # a failed store only costs the next lookup
                logger.warning("client cache unavailable; entry not stored", exc_info=True)
        answers.append(client)
    return answers


def get_client(client_id: str) -> Client | None:
    """The client registered as `client_id` (active or not), or None."""
    return _cached([(_key(client_id), lambda: _load(client_id))])[0]


def get_api(audience: str) -> Client | None:
    """The API (resource server, `Client.Kind.API`) registered with this `audience`, or None:
    the same generation rules as `get_client`; a miss is never cached."""
    return _cached([(_api_key(audience), lambda: _load_api(audience))])[0]


def get_client_and_api(client_id: str, audience: str) -> tuple[Client | None, Client | None]:
    """`get_client(client_id)` and `get_api(audience)` in one round trip to the cache: a
    client-credentials grant naming an API (RFC 9068) reads both, and its request is otherwise
    so short that the second round trip was a tenth of its CPU (docs/performance.md)."""
    client, api = _cached(
        [
            (_key(client_id), lambda: _load(client_id)),
            (_api_key(audience), lambda: _load_api(audience)),
        ]
    )
    return client, api


def _bump_generation() -> None:
    try:
        cache.set(GENERATION_KEY, time.time_ns(), timeout=GENERATION_TIMEOUT)
    except Exception:  # entries still expire after IDP_CLIENT_CACHE_SECONDS
        logger.error("client cache generation not bumped: entries expire on their own")


def invalidate_clients() -> None:
    """Forget every cached client once the current transaction commits (at once outside one).

    After the commit, not before: a reader between an early bump and the commit would store the
    old row under the new generation."""
    if cache_seconds() <= 0:
        return
    transaction.on_commit(_bump_generation)
