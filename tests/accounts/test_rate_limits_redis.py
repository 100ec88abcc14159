"""allauth's rate limits kept in Redis (the shared cache when REDIS_URL is set).

These tests talk to the machine's Redis (a database number of their own), so like the scale-out
tests they run in the Makefile's PostgreSQL phase (`pytest -m redis`) and fail, never skip, when
Redis does not answer. Across real processes: tests/deploy/test_shared_cache.py.
"""

from __future__ import annotations

import threading
from http import HTTPStatus

import pytest
import redis
from allauth.core import ratelimit
from django.test import Client, RequestFactory

from tests.accounts.conftest import LOGIN_URL, WRONG_PASSWORD_ERROR, is_signed_in, sign_in

pytestmark = [pytest.mark.redis, pytest.mark.django_db, pytest.mark.usefixtures("redis_cache")]

TOO_MANY = "Too many failed login attempts"


def test_a_password_sign_in_costs_twenty_rate_limit_round_trips(monkeypatch, user, password):
    """allauth's own limiter: per rate a lock (SET NX), GET, SET and the lock's DEL. login (one
    rate) and login_failed (two rates) consumed, login_failed rolled back on success (two
    rates): twenty commands. A change here is allauth's or ACCOUNT_RATE_LIMITS'."""
    commands: list[tuple[str, ...]] = []
    execute = redis.Redis.execute_command

    def recording(self, *args, **options):
        commands.append(tuple(str(a) for a in args))
        return execute(self, *args, **options)

    client = Client()
    client.get(LOGIN_URL)
    monkeypatch.setattr(redis.Redis, "execute_command", recording)
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    monkeypatch.undo()
    assert response.status_code == HTTPStatus.FOUND
    assert is_signed_in(client)
    limits = [c for c in commands if any(":rl:" in part for part in c)]
    assert len(limits) == 20, limits


def test_failed_sign_ins_are_limited_through_redis(settings, user, password):
    settings.IDP_LOCKOUT_THRESHOLD = 1000  # the per-account lock out of the way
    assert sign_in(Client(), "alice", password).status_code == HTTPStatus.FOUND
    # login_failed: 5 per 5 minutes per login name. The successful sign-in took its hits back:
    # all five wrong passwords are answered as such, none as too many.
    for _ in range(5):
        wrong = sign_in(Client(), "alice", "wrong password")
        assert wrong.status_code == HTTPStatus.OK
        assert WRONG_PASSWORD_ERROR in wrong.content.decode()
        assert TOO_MANY not in wrong.content.decode()
    refused = sign_in(Client(), "alice", password)
    assert refused.status_code == HTTPStatus.OK
    assert TOO_MANY in refused.content.decode()


def test_simultaneous_hits_never_pass_the_limit(settings):
    """16 threads at once through the shared cache, 5 allowed."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "5/m/key"}
    start = threading.Barrier(16)
    answers: list[bool] = []

    def hit() -> None:
        request = RequestFactory().post("/", REMOTE_ADDR="192.0.2.1")
        start.wait()
        answers.append(ratelimit.consume(request, action="login_failed", key="alice"))

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 11 + [True] * 5
