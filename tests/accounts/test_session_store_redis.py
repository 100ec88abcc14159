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


def test_a_sign_in_writes_its_session_with_two_commands(user, password, session_commands):
    client = Client()
    client.get(LOGIN_URL)
    session_commands.clear()
    response = client.post(LOGIN_URL, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    # A new key at login() (SET … NX), its data at the end of the response (SET … XX); Django's
    # backend sent EXISTS before the first and GET before the second.
    condition = [(c[0], *(flag for flag in ("NX", "XX") if flag in c)) for c in session_commands]
    assert condition == [("SET", "NX"), ("SET", "XX")], session_commands
    assert is_signed_in(client)  # the session reads back


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
