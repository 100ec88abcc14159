"""Browser sessions in Redis through Django's cache session backend (SESSION_ENGINE when
REDIS_URL is set): a session ended elsewhere stays ended, a taken key is never written over.

Run against the machine's Redis in the Makefile's PostgreSQL phase (`pytest -m redis`).
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
import redis
from django.contrib.sessions.backends import base
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.cache import SessionStore
from django.test import Client

from tests.accounts.conftest import LOGIN_URL, is_signed_in

pytestmark = [pytest.mark.redis, pytest.mark.django_db, pytest.mark.usefixtures("redis_cache")]

SESSION_KEYS = "django.contrib.sessions.cache"


@pytest.fixture(autouse=True)
def _redis_sessions(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # production's


@pytest.fixture
def session_commands(monkeypatch):
    """The Redis commands sent for session keys while the test records."""
    commands: list[tuple[str, ...]] = []
    execute = redis.Redis.execute_command

    def recording(self, *args, **options):
        if any(SESSION_KEYS in str(a) for a in args):
            commands.append(tuple(str(a) for a in args))
        return execute(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", recording)
    return commands


def test_a_sign_in_writes_its_session_in_four_commands(user, password, session_commands):
    client = Client()
    client.get(LOGIN_URL)
    session_commands.clear()
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    # Django's cache backend: login() draws a key no session has (EXISTS) and writes it empty
    # (SET NX); the end of the response checks it still exists (GET) and writes the data (SET).
    condition = [(c[0], *(flag for flag in ("NX", "XX") if flag in c)) for c in session_commands]
    assert condition == [("EXISTS",), ("SET", "NX"), ("GET",), ("SET",)], session_commands
    assert is_signed_in(client)  # the session reads back


def test_a_cycled_key_keeps_the_sessions_data(redis_cache):
    store = SessionStore()
    store["colour"] = "blue"
    store.save()
    old_key = store.session_key
    store.cycle_key()
    new_key = store.session_key
    assert new_key != old_key
    assert not store.exists(old_key)  # the old key is gone at once
    store["shade"] = "dark"
    store.save()
    assert SessionStore(new_key).load() == {"colour": "blue", "shade": "dark"}
    store["shade"] = "light"  # later saves are updates
    store.save()
    assert SessionStore(new_key).load() == {"colour": "blue", "shade": "light"}


def test_a_cycled_key_never_writes_over_a_taken_one(monkeypatch):
    taken = SessionStore()
    taken["owner"] = "first"
    taken.save()
    store = SessionStore()
    store["owner"] = "second"
    store.save()
    drawn = iter([taken.session_key, "c" * 32])
    monkeypatch.setattr(base, "get_random_string", lambda *args: next(drawn))
    store.cycle_key()
    store.save()
    assert store.session_key == "c" * 32  # drawn again
    assert SessionStore(taken.session_key).load() == {"owner": "first"}
    assert SessionStore("c" * 32).load() == {"owner": "second"}


def test_saving_a_live_session_keeps_its_data(redis_cache):
    store = SessionStore()
    store["colour"] = "blue"
    store.save()
    key = store.session_key
    store["colour"] = "green"
    store.save()
    assert SessionStore(key).load() == {"colour": "green"}
    assert 0 < redis_cache.ttl(next(redis_cache.scan_iter(f"*{key}"))) <= store.get_expiry_age()


def test_a_session_ended_meanwhile_is_not_written_back(redis_cache):
    store = SessionStore()
    store["colour"] = "blue"
    store.save()
    key = store.session_key
    assert store.exists(key)
    SessionStore(key).delete()  # signed out elsewhere, ended by an administrator
    store["colour"] = "green"
    with pytest.raises(UpdateError):  # Django's SessionMiddleware answers SessionInterrupted
        store.save()
    assert not store.exists(key)
    assert not list(redis_cache.scan_iter(f"*{key}"))


def test_a_taken_key_is_drawn_again(monkeypatch):
    taken = SessionStore()
    taken["owner"] = "first"
    taken.save()
    drawn = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(base, "get_random_string", lambda *args: next(drawn))
    new = SessionStore()
    new["owner"] = "second"
    new.save()
    assert new.session_key == "k" * 32
    assert SessionStore(taken.session_key).load() == {"owner": "first"}
    assert SessionStore("k" * 32).load() == {"owner": "second"}
