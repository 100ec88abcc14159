"""allauth's rate limits in Redis with one round trip per rate, when the cache is Redis.

allauth (`allauth.core.internal.ratelimit`) keeps each limit as a pickled list of hit times in
the cache and guards it with a lock of its own: add the lock, get the list, set it, delete the
lock - four round trips per rate. A password sign-in consumes `login` (one rate) and
`login_failed` (two rates) and, once the password is right, rolls `login_failed` back (two
more): 20 of the login POST's 24 Redis commands, ~2.5 ms of a sign-in's CPU on the bench
machine (BENCHMARKS.md, round 4).

With django-redis as the cache, the same sliding window is a sorted set of hit times changed by
one Lua script, which Redis runs atomically (so no lock): drop the hits that left the window,
count, record. A rollback removes its own hit (one ZREM); `clear` deletes the set. Everything
else is allauth's: which actions are limited and how (`ACCOUNT_RATE_LIMITS`), the keys (per
address, user or key; IPv6 prefixes), the window rule (a hit exactly `duration` seconds old has
left it), `dry_run`, `raise_exception`, and the clock (the app's `time.time()`, which tests
freeze). tests/accounts/test_ratelimit_redis.py drives this and allauth's own code through the
same random histories and requires the same answers.

Only two module functions are replaced (`_consume_single_rate` and `clear`; allauth's
`consume` looks them up at call time). They are private to allauth, so `install()` refuses to
start when their signatures change, as accounts.apps does for the usersessions receiver. Any
other cache (the in-process one: a single process) keeps allauth's implementation.
"""

from __future__ import annotations

import functools
import inspect
import math
import secrets
import time
from dataclasses import dataclass
from typing import Any

from allauth.core.exceptions import RateLimited
from allauth.core.internal import ratelimit as allauth_ratelimit
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django_redis import get_redis_connection
from django_redis.cache import RedisCache

# allauth's implementations, kept for other caches (and for the equivalence test).
ALLAUTH_CONSUME_SINGLE_RATE = allauth_ratelimit._consume_single_rate
ALLAUTH_CLEAR = allauth_ratelimit.clear

# KEYS[1]: the window's sorted set. ARGV: now, cutoff (now - window), amount, "1" to record,
# member, window in ms. Times travel as Python's repr of the double, never as Lua numbers
# (redis.call would format those with 14 significant digits, rounding a Unix time to 0.1 ms).
# A hit scored exactly at the cutoff has left the window (allauth: `ts <= now - duration`).
_CONSUME = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
end
return 1
"""


def _redis_cache() -> RedisCache | None:
    cache = caches["default"]
    return cache if isinstance(cache, RedisCache) else None


def _window_key(cache: RedisCache, cache_key: str) -> str:
    # allauth's key, with the cache's prefix and version, and a suffix of its own: the value is
    # a sorted set, not allauth's pickled list, so the two never meet during a deploy.
    return cache.make_key(f"{cache_key}:hits")


@functools.cache
def _consume_script() -> Any:
    # redis-py's Script sends EVALSHA, and loads the script once into a Redis that lacks it;
    # each call names its client, so one Script serves every connection.
    return get_redis_connection("default").register_script(_CONSUME)


@dataclass
class WindowHit:
    """A recorded hit (allauth's SingleRateLimitUsage): `rollback()` takes it back."""

    key: str
    member: str

    def rollback(self) -> None:
        get_redis_connection("default").zrem(self.key, self.member)


def consume_single_rate(
    request: HttpRequest,
    *,
    app: str,
    action: str,
    rate: allauth_ratelimit.Rate,
    key: Any = None,
    user: Any = None,
    dry_run: bool = False,
    raise_exception: bool = False,
) -> Any:
    """allauth's `_consume_single_rate`: the usage if the hit is allowed, else None (or raise)."""
    cache = _redis_cache()
    if cache is None:
        return ALLAUTH_CONSUME_SINGLE_RATE(
            request,
            app=app,
            action=action,
            rate=rate,
            key=key,
            user=user,
            dry_run=dry_run,
            raise_exception=raise_exception,
        )
    cache_key = allauth_ratelimit.get_cache_key(
        request, app=app, action=action, rate=rate, key=key, user=user
    )
    window_key = _window_key(cache, cache_key)
    now = time.time()
    member = f"{now!r}:{secrets.token_hex(6)}"
    client = get_redis_connection("default")
    allowed = _consume_script()(
        keys=[window_key],
        args=[
            repr(now),
            repr(now - rate.duration),  # allauth's arithmetic, to the last bit
            rate.amount,
            "0" if dry_run else "1",
            member,
            math.ceil(rate.duration * 1000),
        ],
        client=client,
    )
    if not allowed:
        if raise_exception:
            raise RateLimited
        return None
    return WindowHit(window_key, member)


def clear(
    request: HttpRequest,
    *,
    app: str,
    action: str,
    config: dict[str, str] | None = None,
    key: Any = None,
    user: Any = None,
) -> None:
    """allauth's `clear`: forget every hit of `action` for this request's address/user/key."""
    cache = _redis_cache()
    if cache is None:
        ALLAUTH_CLEAR(request, app=app, action=action, config=config, key=key, user=user)
        return
    rates = allauth_ratelimit.get_rates(app=app, action=action, config=config)
    keys = [
        _window_key(
            cache,
            allauth_ratelimit.get_cache_key(
                request, app=app, action=action, rate=rate, key=key, user=user
            ),
        )
        for rate in rates
    ]
    if keys:
        get_redis_connection("default").delete(*keys)


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


def install() -> None:
    """Put the two functions in allauth's module (from AccountsConfig.ready)."""
    for ours, theirs in (
        (consume_single_rate, ALLAUTH_CONSUME_SINGLE_RATE),
        (clear, ALLAUTH_CLEAR),
    ):
        if _parameters(ours) != _parameters(theirs):
            raise ImproperlyConfigured(
                f"allauth's ratelimit.{theirs.__name__} changed its parameters: "
                "re-check accounts.ratelimit against allauth."
            )
    allauth_ratelimit._consume_single_rate = consume_single_rate
    allauth_ratelimit.clear = clear
