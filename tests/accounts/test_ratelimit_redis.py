"""allauth's rate limits kept in Redis by accounts.ratelimit: same answers, fewer round trips.

These tests talk to the machine's Redis (a database number of their own), so like the scale-out
tests they run in the Makefile's service phase (`pytest -m redis`) and fail, never skip, when
Redis does not answer. The equivalence test drives allauth's own implementation (over an
in-process cache) and ours (over Redis) through the same random histories.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http import HTTPStatus

import pytest
import redis
import time_machine
from allauth.core.exceptions import RateLimited
from allauth.core.internal import ratelimit as allauth_ratelimit
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory

from accounts import ratelimit
from tests.accounts.conftest import LOGIN_URL, is_signed_in, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.django_db, pytest.mark.usefixtures("redis_cache")]

TOO_MANY = "Too many failed login attempts"


def _request(ip: str = "192.0.2.1", method: str = "POST"):
    return getattr(RequestFactory(), method.lower())("/", REMOTE_ADDR=ip)


def test_installed_in_allauths_module():
    assert allauth_ratelimit.consume is ratelimit.consume
    assert allauth_ratelimit.clear is ratelimit.clear


def test_install_refuses_an_allauth_whose_functions_changed(monkeypatch):
    ratelimit.install()  # as at start-up: allauth's functions have the parameters we replace

    def changed(request, *, app, action, config=None, key=None, user=None, dry_run=False):
        return None

    monkeypatch.setattr(ratelimit, "ALLAUTH_CONSUME", changed)
    with pytest.raises(ImproperlyConfigured, match=r"re-check accounts\.ratelimit"):
        ratelimit.install()


def test_a_password_sign_in_costs_three_rate_limit_round_trips(monkeypatch, user, password):
    """login (one rate) and login_failed (two rates, one call) consumed, login_failed rolled
    back on success (one call): three commands, where one call per rate took five and
    allauth's lock-get-set-delete twenty."""
    commands: list[tuple[str, ...]] = []
    execute = redis.Redis.execute_command

    def recording(self, *args, **options):
        commands.append(tuple(str(a) for a in args))
        return execute(self, *args, **options)

    # Redis has the scripts once anything used them (a Redis without one costs a SCRIPT LOAD).
    warm = allauth_ratelimit.consume(_request(), app="t", action="warm", config={"warm": "1/m/ip"})
    warm.rollback()
    client = Client()
    client.get(LOGIN_URL)
    monkeypatch.setattr(redis.Redis, "execute_command", recording)
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    monkeypatch.undo()
    assert response.status_code == HTTPStatus.FOUND
    assert is_signed_in(client)
    limits = [c for c in commands if any(":rl:" in part for part in c)]
    assert [(c[0], c[2]) for c in limits] == [("EVALSHA", "1"), ("EVALSHA", "2"), ("EVALSHA", "2")]
    assert [part for part in limits[1] if part.endswith(":hits")] == [
        part for part in limits[2] if part.endswith(":hits")
    ]  # the rollback takes back login_failed's two hits
    assert not [c for c in commands if any(part.endswith(":lock") for part in c)]


def test_a_refused_rate_stops_the_action_as_allauth(redis_cache):
    """allauth's loop: the rates before the one that refuses keep their hit, those after it are
    not consumed."""
    config = {"act": "5/m/ip,1/m/key,5/m/ip"}
    request = _request()
    assert allauth_ratelimit.consume(request, app="t", action="act", config=config, key="k")
    assert not allauth_ratelimit.consume(request, app="t", action="act", config=config, key="k")
    # "5/m/ip" twice in the config is one rate for allauth (duplicates dropped): two rates.
    sets = [k.decode() for k in redis_cache.keys("*:rl:*")]
    counts = {("ip" if "/ip:" in key else "key"): redis_cache.zcard(key) for key in sets}
    assert counts == {"ip": 2, "key": 1}


def test_failed_sign_ins_are_limited_through_redis(settings, redis_cache, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 1000  # the per-account lock out of the way
    assert sign_in(Client(), "alice", password).status_code == HTTPStatus.FOUND
    # A successful sign-in took its login_failed hits back: nothing counts against alice.
    assert all(redis_cache.zcard(key) == 0 for key in redis_cache.scan_iter("*login_failed*"))
    for _ in range(5):  # login_failed: 5 per 5 minutes per login name
        assert sign_in(Client(), "alice", "wrong password").status_code == HTTPStatus.OK
    refused = sign_in(Client(), "alice", password)
    assert refused.status_code == HTTPStatus.OK
    assert TOO_MANY in refused.content.decode()


def test_clear_forgets_the_hits_of_one_key_only():
    config = {"act": "2/m/key"}
    request = _request()
    for key in ("a", "b"):
        for _ in range(2):
            assert allauth_ratelimit.consume(request, app="t", action="act", config=config, key=key)
        assert not allauth_ratelimit.consume(request, app="t", action="act", config=config, key=key)
    allauth_ratelimit.clear(request, app="t", action="act", config=config, key="a")
    assert allauth_ratelimit.consume(request, app="t", action="act", config=config, key="a")
    assert not allauth_ratelimit.consume(request, app="t", action="act", config=config, key="b")


def test_a_hit_exactly_one_window_old_has_left_it(redis_cache):
    config = {"act": "1/10s/ip"}
    with time_machine.travel(datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC), tick=False) as t:
        assert allauth_ratelimit.consume(_request(), app="t", action="act", config=config)
        t.shift(9.999)
        assert not allauth_ratelimit.consume(_request(), app="t", action="act", config=config)
        t.shift(0.001)
        assert allauth_ratelimit.consume(_request(), app="t", action="act", config=config)
    (key,) = redis_cache.scan_iter("*:rl:*")
    assert 0 < redis_cache.pttl(key) <= 10_000  # the set expires with its window


def test_dry_run_and_raise_exception_as_allauth():
    config = {"act": "1/m/ip"}
    request = _request()
    assert allauth_ratelimit.consume(request, app="t", action="act", config=config, dry_run=True)
    assert allauth_ratelimit.consume(request, app="t", action="act", config=config)
    assert not allauth_ratelimit.consume(request, app="t", action="act", config=config)
    with pytest.raises(RateLimited):
        allauth_ratelimit.consume(
            request, app="t", action="act", config=config, raise_exception=True
        )


def test_simultaneous_hits_never_pass_the_limit():
    """The script runs atomically in Redis: 16 threads at once, 5 allowed, no lock needed."""
    config = {"act": "5/m/ip"}
    start = threading.Barrier(16)
    answers: list[bool] = []

    def hit() -> None:
        request = _request()
        start.wait()
        answers.append(
            bool(allauth_ratelimit.consume(request, app="t", action="act", config=config))
        )

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 11 + [True] * 5


def test_without_redis_allauths_own_implementation_runs(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.core.cache import cache

    config = {"act": "1/m/ip"}
    assert allauth_ratelimit.consume(_request(), app="t", action="act", config=config)
    assert not allauth_ratelimit.consume(_request(), app="t", action="act", config=config)
    rate = allauth_ratelimit.parse_rate("1/m/ip")
    key = allauth_ratelimit.get_cache_key(_request(), app="t", action="act", rate=rate)
    assert len(cache.get(key)) == 1  # allauth's pickled list of hit times


@contextlib.contextmanager
def _allauth_world(cache: LocMemCache) -> Iterator[None]:
    """allauth's own functions over an in-process cache, swapped into its module meanwhile."""
    saved = (allauth_ratelimit.cache, allauth_ratelimit.consume, allauth_ratelimit.clear)
    allauth_ratelimit.cache = cache
    allauth_ratelimit.consume = ratelimit.ALLAUTH_CONSUME
    allauth_ratelimit.clear = ratelimit.ALLAUTH_CLEAR
    try:
        yield
    finally:
        allauth_ratelimit.cache, allauth_ratelimit.consume, allauth_ratelimit.clear = saved


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_same_answers_as_allauth_over_random_histories(seed):
    """Two actions (one with two rates), two addresses, two keys; consumes, dry runs,
    rollbacks of earlier hits and clears, with the clock moving forward between steps. Time
    moves at least 1 ms per step: allauth's rollback removes every hit with the same time
    stamp, ours only its own, so hits with equal times would be an (intended) difference."""
    rng = random.Random(seed)
    configs = {"login": "2/30s/ip", "login_failed": "3/m/ip,2/20s/key"}
    # Every LocMemCache of one name shares one store: a name of its own per test.
    reference = LocMemCache(f"allauth-reference-{seed}-{random.random()}", {})
    usages: list[tuple[object, object]] = []
    answers = {True: 0, False: 0}
    start = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as clock:
        for step in range(600):
            clock.shift(rng.choice([0.001] * 6 + [0.1, 0.5, 1, 2.5, 9.999, 10, 19.999, 20, 30]))
            request = _request(ip=rng.choice(["192.0.2.1", "2001:db8::1"]))
            action = rng.choice(list(configs))
            key = rng.choice(["alice", "bob"])
            roll = rng.random()
            if roll < 0.1 and usages:
                ours, theirs = usages.pop(rng.randrange(len(usages)))
                ours.rollback()
                with _allauth_world(reference):
                    theirs.rollback()
                continue
            kwargs = {"app": "t", "action": action, "config": configs, "key": key}
            if roll < 0.15:
                allauth_ratelimit.clear(request, **kwargs)
                with _allauth_world(reference):
                    allauth_ratelimit.clear(request, **kwargs)
                continue
            dry_run = roll < 0.25
            ours = allauth_ratelimit.consume(request, dry_run=dry_run, **kwargs)
            with _allauth_world(reference):
                theirs = allauth_ratelimit.consume(request, dry_run=dry_run, **kwargs)
            assert bool(ours) == bool(theirs), (seed, step, action, key)
            answers[bool(ours)] += 1
            if ours and not dry_run:
                usages.append((ours, theirs))
    # Both answers were tested, many times.
    assert answers[True] > 100, answers
    assert answers[False] > 50, answers
