"""Browser sessions in Redis, one round trip per write (SESSION_ENGINE when REDIS_URL is set).

Why this exists: Django's cache session backend asks the cache before each write. A new session
costs EXISTS (`_get_new_session_key` draws a key no session has) and then `add`; saving an
existing one costs GET (so that a session ended meanwhile, signed out elsewhere or by an
administrator, is not written back: `UpdateError`) and then SET. On Redis the write itself can
answer both questions: `add` is `SET … NX`, which fails when the key exists (Django's `create`
then draws another key), and `SET … XX` fails when the session is gone. A sign-in writes its
session twice (a new key at `login()`, its data at the end of the response): four round trips
become two (BENCHMARKS.md round 8). The update is also atomic, where Django's GET-then-SET
leaves a moment in which a session ended between the two is written back.

`cycle_key` (Django's `login()`) draws the new key without writing it: the response's save
writes the session once, with SET NX, instead of an empty write at `login()` and the data's
at the end of the response (BENCHMARKS.md round 12). Until then nothing can present the key:
the browser learns it from that response. A drawn key that turns out taken (165 random bits)
is never written over; the save raises UpdateError, which Django's SessionMiddleware answers
with a 400, rather than draw another after the request already recorded this one (its row
in the user's list of sessions).

Everything else is Django's `django.contrib.sessions.backends.cache` (loading, expiry, keys,
`flush`, the async methods); a cache without SET XX gets Django's save and `cycle_key`.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
from django.utils.crypto import get_random_string
from django_redis.cache import RedisCache


class SessionStore(CacheSessionStore):
    # The key `cycle_key` drew and no save has written yet.
    _unwritten_key: str | None = None

    def _get_new_session_key(self) -> str:
        # No EXISTS: `save(must_create=True)` writes with SET NX and raises CreateError on a
        # taken key, and Django's `create` draws again (as it does when a race takes the key).
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self) -> None:
        if not isinstance(self._cache, RedisCache):
            super().cycle_key()
            return
        data = self._session
        old_key = self.session_key
        self._session_key = self._unwritten_key = self._get_new_session_key()
        self._session_cache = data
        self.modified = True  # so the response writes it
        if old_key:
            self.delete(old_key)

    def save(self, must_create: bool = False) -> None:
        if self._unwritten_key is not None and self._unwritten_key == self.session_key:
            try:
                super().save(must_create=True)  # one SET NX, with the data
            except CreateError:
                raise UpdateError from None  # never another's session; see the module's doc
            self._unwritten_key = None
            return
        if must_create or self.session_key is None or not isinstance(self._cache, RedisCache):
            super().save(must_create=must_create)  # `add`: one SET NX
            return
        written = self._cache.set(
            self.cache_key, self._get_session(), self.get_expiry_age(), xx=True
        )
        if not written:  # the session was deleted meanwhile: not resurrected
            raise UpdateError
