"""Registered clients cached for the token-side hot paths, invalidated by the client services.

Every token, introspection and revocation request authenticates its client (secret hash,
grant types, `is_active`, lifetimes). Loading it through the ORM was the largest single cost of
a client-credentials grant in the profiles (BENCHMARKS.md); reading it from the shared cache is
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

The client-credentials grant and the code exchange go one step further (`local_clients`): each
worker keeps its own copy of the clients it has served, so the grant makes no Redis round trip
at all (the round trip, not the lookup, was a third of the client-credentials grant's worker
CPU under load: BENCHMARKS.md finding 59). A copy no other worker can invalidate is safe only
because nothing is decided on it alone:
- the grant's one write carries `row_guard(client)` (`unchanged_row`): the
  client-credentials grant's access-token INSERT, and the exchange's statement
  (`rotation.exchange`, PostgreSQL) whose code UPDATE every other write selects from, write
  nothing unless the client's row still has the copy's `updated` stamp and is active. Every
  change of a client goes through `Model.save()` (`updated` is `auto_now`; the services name
  it in `update_fields`), a deleted client has no row, so a stale copy writes nothing and
  `StaleClient` makes the token view answer again from the shared cache above;
- any answer but a token (a wrong secret, a scope or grant type the copy refuses) is given
  again the same way, so a stale copy can never refuse what the current row allows; an answer
  with effects of its own (a replayed code revokes what it issued) is left to that second
  pass, so it happens once.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction

from oauth_clients.models import Client

logger = logging.getLogger(__name__)

GENERATION_KEY = "oauth:clients:generation"
PREFIX = "oauth:client:v1:"
# The generation outlives every entry, so an entry can never outlive the generation it saw.
GENERATION_TIMEOUT = 7 * 24 * 3600


def cache_seconds() -> int:
    return int(getattr(settings, "IDP_CLIENT_CACHE_SECONDS", 0) or 0)


def _key(client_id: str) -> str:
    digest = hashlib.sha256(str(client_id).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{PREFIX}id:{digest}"


def _load(client_id: str) -> Client | None:
    return Client.objects.filter(client_id=client_id).first()


def get_client(client_id: str) -> Client | None:
    """The client registered as `client_id` (active or not), or None."""
    seconds = cache_seconds()
    if seconds <= 0:
        return _load(client_id)
    key = _key(client_id)
    try:
        found = cache.get_many([GENERATION_KEY, key])
    except Exception:  # any cache failure: answer from the database
        logger.warning("client cache unavailable; reading the database", exc_info=True)
        return _load(client_id)
    generation = found.get(GENERATION_KEY)
    entry = found.get(key)
    if entry is not None and entry[0] == generation:
        return entry[1]
    client = _load(client_id)
    if client is not None:
        try:
            cache.set(key, (generation, client), timeout=seconds)
        except Exception:  # a failed store only costs the next lookup
            logger.warning("client cache unavailable; entry not stored", exc_info=True)
    return client


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


# ----------------------------------------------------------------- the worker's own copies


class StaleClient(Exception):
    """The worker's copy of a client no longer matches its row, or cannot settle the request
    alone: the grant wrote nothing, and is answered again from the shared cache."""

    def __init__(self, client_id: str) -> None:
        super().__init__(client_id)
        self.client_id = client_id


@dataclasses.dataclass
class LocalUse:
    """What one token request took from the worker's copies (`local_clients`)."""

    client: Client | None = None


# client_id -> (monotonic expiry, the copy). Only registered clients ever enter (a lookup that
# finds nothing is not kept), so its size is bounded by the registry, not by what callers send.
_LOCAL: dict[str, tuple[float, Client]] = {}
_local_use: contextvars.ContextVar[LocalUse | None] = contextvars.ContextVar(
    "idp_local_clients", default=None
)
# Kept at most this long even when unchanged, so a worker does not hold a row's old copy for
# the process's lifetime (the write guard, not this, is what keeps a grant correct).
LOCAL_SECONDS = 60


@contextlib.contextmanager
def local_clients() -> Iterator[LocalUse]:
    """Within this block, `client_for_grant` may answer from the worker's copies (when the
    shared cache is on); the yielded `LocalUse` says whether it did."""
    use = LocalUse()
    token = _local_use.set(use if cache_seconds() > 0 else None)
    try:
        yield use
    finally:
        _local_use.reset(token)


def client_for_grant(client_id: str) -> Client | None:
    """`get_client`, or inside `local_clients` a private copy of the worker's own (refilled
    from `get_client` at most every LOCAL_SECONDS)."""
    use = _local_use.get()
    if use is None:
        return get_client(client_id)
    now = time.monotonic()
    entry = _LOCAL.get(client_id)
    if entry is None or entry[0] <= now:
        client = get_client(client_id)
        if client is None:
            _LOCAL.pop(client_id, None)
            return None
        entry = (now + LOCAL_SECONDS, client)
        _LOCAL[client_id] = entry
    # A copy per request: nothing a request sets on its client reaches another request.
    use.client = copy.copy(entry[1])
    return use.client


def forget_local(client_id: str) -> None:
    """Drop the worker's copy (it turned out stale, or answered anything but a token)."""
    _LOCAL.pop(client_id, None)


def row_guard(client: Client | None) -> Callable[[str], tuple[str, list[Any]]] | None:
    """The guard a write for `client` must carry when `client` is the worker's copy this
    request was served from: `unchanged_row` bound to it, given the write's database. None
    when the client came from the shared cache or the database (nothing to guard)."""
    use = _local_use.get()
    copy = use.client if use is not None else None
    if copy is None or copy is not client:
        return None
    return functools.partial(unchanged_row, copy)


@functools.cache
def _unchanged_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    table = quote(Client._meta.db_table)
    fields = Client._meta
    # Names from the model, quoted; every value a bound parameter.
    return (
        f"SELECT 1 FROM {table} WHERE {quote(fields.pk.column)} = %s"  # noqa: S608
        f" AND {quote(fields.get_field('updated').column)} = %s"
        f" AND {quote(fields.get_field('is_active').column)}"
    )


def unchanged_row(client: Client, alias: str) -> tuple[str, list[Any]]:
    """SQL (and parameters) true while `client`'s row is as the copy saw it, and active,
    quoted and prepared for `alias`: the database of the write it guards, which must hold the
    client table too (one database in this project)."""
    updated = Client._meta.get_field("updated").get_db_prep_value(
        client.updated, connections[alias]
    )
    return _unchanged_sql(alias), [client.pk, updated]
