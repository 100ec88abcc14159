"""Sessions in Redis through accounts.session_store: Django's answers, one round trip per write.

Run against the machine's Redis in the Makefile's service phase (`pytest -m redis`).
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
import redis
from django.contrib.sessions.backends.base import UpdateError
from django.test import Client

from accounts import session_store
from tests.accounts.conftest import LOGIN_URL, is_signed_in

pytestmark = [pytest.mark.redis, pytest.mark.django_db, pytest.mark.usefixtures("redis_cache")]

SESSION_KEYS = "django.contrib.sessions.cache"


@pytest.fixture(autouse=True)
def _redis_sessions(settings):
    settings.SESSION_ENGINE = "accounts.session_store"


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


def test_a_sign_in_writes_its_session_with_one_command(user, password, session_commands):
    client = Client()
    client.get(LOGIN_URL)
    session_commands.clear()
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    # The key login() drew, written once with its data at the end of the response (SET … NX).
    # Django's backend sent EXISTS and SET NX at login(), then GET and SET; round 8's two SETs.
    condition = [(c[0], *(flag for flag in ("NX", "XX") if flag in c)) for c in session_commands]
    assert condition == [("SET", "NX")], session_commands
    assert is_signed_in(client)  # the session reads back


def test_a_cycled_key_is_written_once_with_the_sessions_data(redis_cache, session_commands):
    store = session_store.SessionStore()
    store["colour"] = "blue"
    store.save()
    old_key = store.session_key
    session_commands.clear()
    store.cycle_key()
    new_key = store.session_key
    assert new_key != old_key
    assert not store.exists(old_key)  # the old key is gone at once
    assert not store.exists(new_key)  # the new one waits for the response's save
    store["shade"] = "dark"
    store.save()
    assert session_store.SessionStore(new_key).load() == {"colour": "blue", "shade": "dark"}
    writes = [c for c in session_commands if c[0] == "SET"]
    assert len(writes) == 1
    assert "NX" in writes[0]
    store["shade"] = "light"  # later saves are updates again
    store.save()
    assert session_store.SessionStore(new_key).load() == {"colour": "blue", "shade": "light"}


def test_a_cycled_key_never_writes_over_a_taken_one(monkeypatch):
    taken = session_store.SessionStore()
    taken["owner"] = "first"
    taken.save()
    store = session_store.SessionStore()
    store["owner"] = "second"
    store.save()
    monkeypatch.setattr(session_store, "get_random_string", lambda *args: taken.session_key)
    store.cycle_key()
    with pytest.raises(UpdateError):  # SessionMiddleware's 400; the sign-in can be retried
        store.save()
    assert session_store.SessionStore(taken.session_key).load() == {"owner": "first"}


def test_saving_a_live_session_keeps_its_data(redis_cache):
    store = session_store.SessionStore()
    store["colour"] = "blue"
    store.save()
    key = store.session_key
    store["colour"] = "green"
    store.save()
    assert session_store.SessionStore(key).load() == {"colour": "green"}
    assert 0 < redis_cache.ttl(next(redis_cache.scan_iter(f"*{key}"))) <= store.get_expiry_age()


def test_a_session_ended_meanwhile_is_not_written_back(redis_cache):
    store = session_store.SessionStore()
    store["colour"] = "blue"
    store.save()
    key = store.session_key
    assert store.exists(key)
    session_store.SessionStore(key).delete()  # signed out elsewhere, ended by an administrator
    store["colour"] = "green"
    with pytest.raises(UpdateError):  # Django's SessionMiddleware answers SessionInterrupted
        store.save()
    assert not store.exists(key)
    assert not list(redis_cache.scan_iter(f"*{key}"))


def test_a_taken_key_is_drawn_again(monkeypatch):
    taken = session_store.SessionStore()
    taken["owner"] = "first"
    taken.save()
    drawn = iter([taken.session_key, "k" * 32])
    monkeypatch.setattr(session_store, "get_random_string", lambda *args: next(drawn))
    new = session_store.SessionStore()
    new["owner"] = "second"
    new.save()
    assert new.session_key == "k" * 32
    assert session_store.SessionStore(taken.session_key).load() == {"owner": "first"}
    assert session_store.SessionStore("k" * 32).load() == {"owner": "second"}
