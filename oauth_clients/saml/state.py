"""What the SAML engine keeps between requests: pending sign-in requests and the session's SPs.

Session keys (the browser session's own storage, nothing in the database):

- `idp_saml_pending` — {key: request}: AuthnRequests checked and waiting for the person to sign
  in, re-authenticate or pass the second factor. The resume URL carries only the random key;
  the request itself is never read back from a URL. At most `MAX_PENDING`, each for
  `PENDING_SECONDS`; removed once answered.
- `idp_saml_sessions` — [{"entity_id", "client_id", "name_id", "name_id_format",
  "session_index", "issued_at"}]: every SAML app this session signed in to, one entry per
  assertion (newest last, at most `MAX_SESSIONS`). Single logout (SAML 2.0 Profiles §4.4) reads
  it to find the apps to tell and the NameID and SessionIndex each knows.

Single logout also needs these entries when the session ends elsewhere (an administrator, a
password change, another browser): `record_sign_in` indexes the session key under a digest of
the session's `sid` in the shared cache (as long as a session lives), and `session_entries`
reads the stored session back by its `sid`, falling back to the user's tracked sessions.

An app's LogoutRequest over SOAP (`slo_soap`) comes without a browser: `record_sign_in` also
indexes the session key under a digest of the app's entity ID and the NameID it was given
(at most `MAX_INDEXED` sessions per NameID, as long as a session lives), and
`sessions_named` reads those sessions back, keeping the ones whose record holds that NameID
(and SessionIndex) for that app. Both indexes live in the shared cache (Redis, or the
database cache), never in a worker's memory.

An HTTP-POST AuthnRequest (or LogoutRequest) arrives cross-site, without the session cookie
(SameSite=Lax): it is parked in the cache under a random key (`park`) for `PARK_SECONDS`, and
the same-site GET of the resume URL moves it into the session (`claim`, or `take_parked`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from importlib import import_module
from typing import Any

from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.core.cache import cache
from django.http import HttpRequest

from accounts.sessions import SID_KEY, get_sid

PENDING_KEY = "idp_saml_pending"
SESSIONS_KEY = "idp_saml_sessions"
MAX_PENDING = 8
PENDING_SECONDS = 30 * 60
MAX_SESSIONS = 50
PARK_SECONDS = 5 * 60
_PARK_PREFIX = "saml:parked:"
_SID_PREFIX = "saml:session-of-sid:"
_NAME_PREFIX = "saml:sessions-of-name:"
MAX_INDEXED = 20


def new_key() -> str:
    return secrets.token_urlsafe(24)


def _pending(request: HttpRequest) -> dict[str, dict[str, Any]]:
    found = request.session.get(PENDING_KEY)
    if not isinstance(found, dict):
        return {}
    now = time.time()
    return {
        key: value
        for key, value in found.items()
        if isinstance(value, dict) and now - value.get("stored_at", 0) < PENDING_SECONDS
    }


def keep(request: HttpRequest, key: str, pending: dict[str, Any]) -> None:
    """Keep a checked request in this session until it is answered."""
    entries = _pending(request)
    entries[key] = {**pending, "stored_at": int(time.time())}
    while len(entries) > MAX_PENDING:
        oldest = min(entries, key=lambda k: entries[k]["stored_at"])
        del entries[oldest]
    request.session[PENDING_KEY] = entries


def find(request: HttpRequest, key: str) -> dict[str, Any] | None:
    return _pending(request).get(key)


def forget(request: HttpRequest, key: str) -> None:
    entries = _pending(request)
    if entries.pop(key, None) is not None or PENDING_KEY in request.session:
        request.session[PENDING_KEY] = entries


def park(pending: dict[str, Any], *, seconds: int = PARK_SECONDS) -> str:
    """Store a checked request without the session (see above); returns its key."""
    key = new_key()
    cache.set(f"{_PARK_PREFIX}{key}", pending, timeout=seconds)
    return key


def take_parked(key: str) -> dict[str, Any] | None:
    """What was parked under `key`, once."""
    cache_key = f"{_PARK_PREFIX}{key}"
    pending = cache.get(cache_key)
    if not isinstance(pending, dict):
        return None
    cache.delete(cache_key)
    return pending


def claim(request: HttpRequest, key: str) -> dict[str, Any] | None:
    """The request parked under `key`, moved into this session (once)."""
    pending = take_parked(key)
    if pending is None:
        return None
    keep(request, key, pending)
    return find(request, key)


def _sid_cache_key(sid: str) -> str:
    return f"{_SID_PREFIX}{hashlib.sha256(sid.encode()).hexdigest()}"


def record_sign_in(request: HttpRequest, entry: dict[str, Any]) -> None:
    """Remember that this session signed in to a SAML app (for single logout)."""
    entries = request.session.get(SESSIONS_KEY)
    entries = list(entries) if isinstance(entries, list) else []
    entries.append(entry)
    request.session[SESSIONS_KEY] = entries[-MAX_SESSIONS:]
    sid, session_key = get_sid(request), request.session.session_key
    if sid and session_key:
        cache.set(_sid_cache_key(sid), session_key, timeout=settings.SESSION_COOKIE_AGE)
    entity, name_id = str(entry.get("entity_id", "")), str(entry.get("name_id", ""))
    if session_key and entity and name_id:
        key = _name_cache_key(entity, name_id)
        indexed = cache.get(key)
        keys = [k for k in indexed if k != session_key] if isinstance(indexed, list) else []
        keys.append(session_key)
        cache.set(key, keys[-MAX_INDEXED:], timeout=settings.SESSION_COOKIE_AGE)


def _name_cache_key(entity_id: str, name_id: str) -> str:
    digest = hashlib.sha256(f"{entity_id}\n{name_id}".encode()).hexdigest()
    return f"{_NAME_PREFIX}{digest}"


def entries_naming(
    entries: list[dict[str, Any]],
    *,
    entity_id: str,
    name_id: str,
    name_id_format: str = "",
    session_indexes: list[str] | None = None,
) -> bool:
    """The record holds an assertion for the app `entity_id` with this NameID (SAML 2.0 Core
    §3.7.3.1), in the same format when one is given, and one of `session_indexes` when any."""
    for entry in entries:
        if entry.get("entity_id") != entity_id or entry.get("name_id") != name_id:
            continue
        if name_id_format and name_id_format != entry.get("name_id_format"):
            continue
        if session_indexes and entry.get("session_index") not in session_indexes:
            continue
        return True
    return False


def sessions_named(
    *, entity_id: str, name_id: str, name_id_format: str = "", session_indexes: list[str]
) -> list[tuple[str, str, str]]:
    """(session key, user id, sid) of every live session that gave the app `entity_id` this
    NameID (and one of `session_indexes`, when any): see the module docstring."""
    indexed = cache.get(_name_cache_key(entity_id, name_id))
    if not isinstance(indexed, list):
        return []
    engine = import_module(settings.SESSION_ENGINE)
    found = []
    for session_key in indexed:
        if not isinstance(session_key, str):
            continue
        data = engine.SessionStore(session_key).load()
        entries = data.get(SESSIONS_KEY)
        user_id = data.get(AUTH_USER_KEY)
        if not isinstance(entries, list) or user_id is None:
            continue
        if entries_naming(
            [entry for entry in entries if isinstance(entry, dict)],
            entity_id=entity_id,
            name_id=name_id,
            name_id_format=name_id_format,
            session_indexes=session_indexes,
        ):
            found.append((session_key, str(user_id), str(data.get(SID_KEY, "") or "")))
    return found


def signed_in_apps(request: HttpRequest) -> list[dict[str, Any]]:
    """The SAML apps this session signed in to (oldest first)."""
    entries = request.session.get(SESSIONS_KEY)
    return list(entries) if isinstance(entries, list) else []


def session_entries(*, sid: str, user: Any = None) -> list[dict[str, Any]]:
    """The SAML apps the stored session `sid` signed in to (see the module docstring); read
    before the session is deleted. [] when no stored session carries that sid."""
    if not sid:
        return []
    keys: list[str] = []
    indexed = cache.get(_sid_cache_key(sid))
    if isinstance(indexed, str):
        keys.append(indexed)
    if user is not None and getattr(user, "pk", None) is not None:
        keys.extend(
            key
            for key in UserSession.objects.filter(user=user).values_list("session_key", flat=True)
            if key not in keys
        )
    engine = import_module(settings.SESSION_ENGINE)
    for session_key in keys:
        data = engine.SessionStore(session_key).load()
        if data.get(SID_KEY) == sid:
            entries = data.get(SESSIONS_KEY)
            return (
                [entry for entry in entries if isinstance(entry, dict)]
                if isinstance(entries, list)
                else []
            )
    return []
