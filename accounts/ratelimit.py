"""allauth's rate limits in Redis with one round trip per action, when the cache is Redis.

allauth (`allauth.core.internal.ratelimit`) keeps each limit as a pickled list of hit times in
the cache and guards it with a lock of its own: add the lock, get the list, set it, delete the
lock - four round trips per rate. A password sign-in consumes `login` (one rate) and
`login_failed` (two rates) and, once the password is right, rolls `login_failed` back (two
more): 20 of the login POST's 24 Redis commands, ~2.5 ms of a sign-in's CPU on the bench
machine (BENCHMARKS.md, round 4).

With django-redis as the cache, the same sliding window is a sorted set of hit times changed by
one Lua script, which Redis runs atomically (so no lock): drop the hits that left the window,
count, record. One script call takes every rate of an action in allauth's order and stops at
the first that refuses, as allauth's loop does (the rates before it keep their hit); a rollback
removes the action's own hits in one call; `clear` deletes the sets. So a password sign-in
costs three round trips for its limits (`login`, `login_failed`, the rollback), where one
call per rate cost five (BENCHMARKS.md round 12). Everything else is allauth's: which actions
are limited and how (`ACCOUNT_RATE_LIMITS`), the keys (per address, user or key; IPv6
prefixes), the window rule (a hit exactly `duration` seconds old has left it), GET requests
passing unless `limit_get`, `dry_run`, `raise_exception`, and the clock (the app's
`time.time()`, which tests freeze). tests/accounts/test_ratelimit_redis.py drives this and
allauth's own code through the same random histories and requires the same answers.

Only two module functions are replaced (`consume` and `clear`; allauth's own callers, its
public `allauth.core.ratelimit` included, look them up at call time). They are private to
allauth, so `install()` refuses to start when their signatures change, as accounts.apps does
for the usersessions receiver. Any other cache (the database cache without Redis) keeps
allauth's implementation.
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
ALLAUTH_CONSUME = allauth_ratelimit.consume
ALLAUTH_CLEAR = allauth_ratelimit.clear

# KEYS: the windows' sorted sets, one per rate. ARGV[1]: now; ARGV[2]: "1" to record; then per
# rate: cutoff (now - window), amount, member, window in ms. Returns how many rates allowed the
# hit before the first that refused (all of them: allowed). Times travel as Python's repr of
# the double, never as Lua numbers (redis.call would format those with 14 significant digits,
# rounding a Unix time to 0.1 ms). A hit scored exactly at the cutoff has left the window
# (allauth: `ts <= now - duration`).
_CONSUME = """
for i, key in ipairs(KEYS) do
  local at = 2 + (i - 1) * 4
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[at + 1])
  if redis.call('ZCARD', key) >= tonumber(ARGV[at + 2]) then
    return i - 1
  end
  if ARGV[2] == '1' then
    redis.call('ZADD', key, ARGV[1], ARGV[at + 3])
    redis.call('PEXPIRE', key, ARGV[at + 4])
  end
end
return #KEYS
"""

# KEYS: sorted sets; ARGV: the member to remove from each.
_ROLLBACK = """
for i, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[i])
end
return #KEYS
"""


def _redis_cache() -> RedisCache | None:
    cache = caches["default"]
    return cache if isinstance(cache, RedisCache) else None


def _window_key(cache: RedisCache, cache_key: str) -> str:
    # allauth's key, with the cache's prefix and version, and a suffix of its own: the value is
    # a sorted set, not allauth's pickled list, so the two never meet during a deploy.
    return cache.make_key(f"{cache_key}:hits")


@functools.cache
def _script(source: str) -> Any:
    # redis-py's Script sends EVALSHA, and loads the script once into a Redis that lacks it;
    # each call names its client, so one Script serves every connection.
    return get_redis_connection("default").register_script(source)


@dataclass
class WindowHit(allauth_ratelimit.SingleRateLimitUsage):
    """One rate's recorded hit: its window's key and its own member there."""

    key: str = ""
    member: str = ""

    def rollback(self) -> None:
        _rollback([self])


@dataclass
class WindowUsage(allauth_ratelimit.RateLimitUsage):
    """allauth's RateLimitUsage whose rollback takes back every rate's hit in one call."""

    def rollback(self) -> None:
        _rollback(self.usage)


def _rollback(hits: list[Any]) -> None:
    if hits:
        _script(_ROLLBACK)(
            keys=[hit.key for hit in hits],
            args=[hit.member for hit in hits],
            client=get_redis_connection("default"),
        )


def consume(
    request: HttpRequest,
    *,
    app: str,
    action: str,
    config: dict[str, str] | None = None,
    key: Any = None,
    user: Any = None,
    dry_run: bool = False,
    limit_get: bool = False,
    raise_exception: bool = False,
) -> Any:
    """allauth's `consume`: the usage if every rate allows the hit, else None (or raise)."""
    cache = _redis_cache()
    if cache is None:
        return ALLAUTH_CONSUME(
            request,
            app=app,
            action=action,
            config=config,
            key=key,
            user=user,
            dry_run=dry_run,
            limit_get=limit_get,
            raise_exception=raise_exception,
        )
    usage = WindowUsage(usage=[])
    if (not limit_get) and request.method == "GET":
        return usage
    rates = allauth_ratelimit.get_rates(app=app, action=action, config=config)
    if not rates:
        return usage
    now = time.time()
    args: list[Any] = [repr(now), "0" if dry_run else "1"]
    for rate in rates:
        cache_key = allauth_ratelimit.get_cache_key(
            request, app=app, action=action, rate=rate, key=key, user=user
        )
        hit = WindowHit(
            cache_key=cache_key,
            cache_duration=rate.duration,
            timestamp=now,
            key=_window_key(cache, cache_key),
            member=f"{now!r}:{secrets.token_hex(6)}",
        )
        # allauth's arithmetic for the cutoff, to the last bit.
        args += [
            repr(now - rate.duration),
            rate.amount,
            hit.member,
            math.ceil(rate.duration * 1000),
        ]
        usage.usage.append(hit)
    allowed = _script(_CONSUME)(
        keys=[hit.key for hit in usage.usage], args=args, client=get_redis_connection("default")
    )
    if allowed < len(rates):
        if raise_exception:
            raise RateLimited
        return None
    return usage


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
    for ours, theirs in ((consume, ALLAUTH_CONSUME), (clear, ALLAUTH_CLEAR)):
        if _parameters(ours) != _parameters(theirs):
            raise ImproperlyConfigured(
                f"allauth's ratelimit.{theirs.__name__} changed its parameters: "
                "re-check accounts.ratelimit against allauth."
            )
    allauth_ratelimit.consume = consume
    allauth_ratelimit.clear = clear
