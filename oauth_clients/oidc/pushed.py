"""Pushed authorization requests (RFC 9126): the pushed parameters, kept until the browser comes.

A client POSTs its authorization request to the PAR endpoint (oauth_clients/oidc/views/par.py),
authenticated as at the token endpoint; the parameters, validated as the authorization endpoint
validates them, are kept here under a fresh `request_uri` for `PUSHED_REQUEST_SECONDS`. The
browser then arrives at /o/authorize/ with only `client_id` and `request_uri`
(oauth_clients/oidc/views/authorize.py): `take_pushed_request` hands the parameters over once,
to the same client only, and `SessionPushedRequest` keeps them in that browser's session for
the rest of this one authorization (sign-in, second factor, consent all come back to the same
URL), until the answer goes to the app.

Where they are kept: the shared cache (Redis, or the database cache without it: every process
sees it), as the single-use `jti` of client assertions are (oauth_clients/oidc/client_assertion.py),
and not a table as device codes are (oauth_clients/oidc/device.py keeps a row because the person's
decision and the device's polls change it over minutes, and the exchange writes tokens in the
same step). A pushed request is written once, read once, lives a minute and nothing refers to
it: `cache.add` stores it, `cache.delete` (one DEL or one DELETE: only one caller sees it
succeed) makes it single use, the cache's timeout expires it, and losing the cache only makes
a client push again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

# RFC 9126 §2.2: the `request_uri` is a URN of this form with a reference of our choosing.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
# RFC 9126 §2.2 suggests a short lifetime ("between 5 and 600 seconds"); the browser is sent on
# at once, so a minute is plenty.
PUSHED_REQUEST_SECONDS = 60
# How long a browser that took a pushed request may take to sign in and consent: a sign-in with
# a forgotten password and a second factor fits; past it, the app starts again.
SESSION_SECONDS = 1800
# Pushed requests one browser session holds at once (a few tabs signing in to a few apps).
SESSION_MAX_REQUESTS = 5
SESSION_KEY = "idp_pushed_requests"
_CACHE_PREFIX = "oauth:par:v1:"
# Client authentication is not part of the authorization request (RFC 9126 §2.1).
CLIENT_AUTHENTICATION_PARAMETERS = frozenset(
    {"client_secret", "client_assertion", "client_assertion_type"}
)

Parameters = list[tuple[str, str]]


def _digest(request_uri: str) -> str:
    return hashlib.sha256(request_uri.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_request_uri(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(REQUEST_URI_PREFIX) and len(value) < 200


def store_pushed_request(*, client_id: str, parameters: Parameters) -> str:
    """Keep a validated authorization request for `client_id`; its new `request_uri`."""
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    value = {
        "client_id": client_id,
        "parameters": [list(pair) for pair in parameters],
        "expires_at": time.time() + PUSHED_REQUEST_SECONDS,
    }
    # A 256-bit reference never collides; `add` would refuse to overwrite one anyway.
    if not cache.add(_CACHE_PREFIX + _digest(request_uri), value, PUSHED_REQUEST_SECONDS):
        raise RuntimeError("request_uri collision")
    return request_uri


class PushedRequestRefused(Exception):
    """The `request_uri` cannot be used: `reason` says why (for the error page's detail)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def take_pushed_request(*, request_uri: str, client_id: str) -> Parameters:
    """The pushed parameters of `request_uri`, taken out of the store: once, by its client,
    before it expires (RFC 9126 §4); `PushedRequestRefused` otherwise. A use by another client
    leaves it in place: presenting someone's request_uri must not cancel it."""
    if not looks_like_request_uri(request_uri):
        raise PushedRequestRefused("request_uri is not one this server issued.")
    key = _CACHE_PREFIX + _digest(request_uri)
    value = cache.get(key)
    if not isinstance(value, dict):
        raise PushedRequestRefused("request_uri is unknown, expired or already used.")
    if value.get("client_id") != client_id:
        raise PushedRequestRefused("request_uri was pushed by another client.")
    if not cache.delete(key):
        raise PushedRequestRefused("request_uri is unknown, expired or already used.")
    if value.get("expires_at", 0) <= time.time():
        raise PushedRequestRefused("request_uri is unknown, expired or already used.")
    return [(str(key), str(val)) for key, val in value["parameters"]]


@dataclass(slots=True)
class SessionPushedRequest:
    """One pushed request this browser took, kept in its session during the authorization.

    `url_parameters` are what the browser's URLs carry (`client_id`, `request_uri`), so the
    sign-in round trip and the consent form come back to the same request; `parameters` are
    the request itself."""

    session: Any
    digest: str
    client_id: str
    request_uri: str
    parameters: Parameters

    @property
    def url_parameters(self) -> Parameters:
        return [("client_id", self.client_id), ("request_uri", self.request_uri)]

    @classmethod
    def resume_or_take(
        cls, *, session: Any, request_uri: str, client_id: str
    ) -> SessionPushedRequest:
        """The request this session already took, else the store's (taken now and kept in the
        session); `PushedRequestRefused` when neither has it for this client."""
        digest = _digest(request_uri) if isinstance(request_uri, str) else ""
        held = dict(session.get(SESSION_KEY) or {})
        entry = held.get(digest)
        now = time.time()
        if isinstance(entry, dict) and entry.get("until", 0) > now:
            if entry.get("client_id") != client_id:
                raise PushedRequestRefused("request_uri was pushed by another client.")
            parameters = [(str(k), str(v)) for k, v in entry["parameters"]]
        else:
            parameters = take_pushed_request(request_uri=request_uri, client_id=client_id)
        pushed = cls(session, digest, client_id, request_uri, parameters)
        if not isinstance(entry, dict) or entry.get("until", 0) <= now:
            pushed.keep(parameters, until=now + SESSION_SECONDS)
        return pushed

    def keep(self, parameters: Parameters, *, until: float | None = None) -> None:
        """Keep (or replace: re-authentication drops `prompt=login` and `max_age`) the
        parameters for the rest of this authorization."""
        held = {
            digest: entry
            for digest, entry in (self.session.get(SESSION_KEY) or {}).items()
            if isinstance(entry, dict) and entry.get("until", 0) > time.time()
        }
        previous = held.pop(self.digest, None)
        if until is None:
            until = previous["until"] if previous else time.time() + SESSION_SECONDS
        held[self.digest] = {
            "client_id": self.client_id,
            "parameters": [list(pair) for pair in parameters],
            "until": until,
        }
        # The oldest go first (dicts keep insertion order).
        while len(held) > SESSION_MAX_REQUESTS:
            held.pop(next(iter(held)))
        self.session[SESSION_KEY] = held
        self.parameters = list(parameters)

    def finish(self) -> None:
        """The authorization is answered (a code or an error went to the app): the same
        request_uri is never used again."""
        held = dict(self.session.get(SESSION_KEY) or {})
        if held.pop(self.digest, None) is not None:
            self.session[SESSION_KEY] = held
