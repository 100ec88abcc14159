"""What this browser session knows about its own sign-in: session id (`sid`), time, methods.

OIDC Core §2: `auth_time` is when *this* session authenticated (DOT uses `user.last_login`,
which another browser can move). OIDC Back-Channel Logout §2.1 / Front-Channel §3: `sid`
identifies the session to clients without exposing the session key.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

SID_KEY = "idp_sid"
AUTH_TIME_KEY = "idp_auth_time"
# When this session's allauth `UserSession` row was last refreshed, and from which client
# (accounts.middleware.SessionActivityMiddleware).
ACTIVITY_KEY = "idp_activity"
# A session's "last seen" in the security centre may lag by this much.
ACTIVITY_INTERVAL_SECONDS = 60


def start_session_context(*, request: HttpRequest, user: AbstractBaseUser) -> None:
    """Called on every sign-in: a fresh sid and the authentication time for this session."""
    request.session[SID_KEY] = secrets.token_urlsafe(32)
    request.session[AUTH_TIME_KEY] = int(time.time())
    # An allauth sign-in records the new session (its `UserSession` row) in this same request
    # (services.record_user_session).
    mark_activity_recorded(request)


def get_sid(request: HttpRequest) -> str:
    """This session's sid ("" when not signed in)."""
    return str(request.session.get(SID_KEY, ""))


def get_auth_time(request: HttpRequest) -> int | None:
    """Unix time at which this session's user authenticated, or None when not signed in."""
    value = request.session.get(AUTH_TIME_KEY)
    return int(value) if value is not None else None


def _client_fingerprint(request: HttpRequest) -> str:
    """The address and browser allauth records on a `UserSession` row, as a short digest."""
    from accounts.audit import client_ip  # accounts.audit needs the models loaded

    agent = request.META.get("HTTP_USER_AGENT", "")
    return hashlib.sha256(f"{client_ip(request)}\n{agent}".encode()).hexdigest()[:16]


def mark_activity_recorded(request: HttpRequest) -> None:
    """This session's `UserSession` row has just been written (created or refreshed)."""
    request.session[ACTIVITY_KEY] = [int(time.time()), _client_fingerprint(request)]


def activity_recorded_recently(request: HttpRequest) -> bool:
    """The row was refreshed less than ACTIVITY_INTERVAL_SECONDS ago from this same address
    and browser (a change must reach the row at once: allauth signals it)."""
    value = request.session.get(ACTIVITY_KEY)
    if not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], int):
        return False
    recorded_at, fingerprint = value
    if time.time() - recorded_at >= ACTIVITY_INTERVAL_SECONDS:
        return False
    return bool(fingerprint == _client_fingerprint(request))


# The answer to "sign out everywhere else" on a password form, kept on the request for the
# receiver of allauth's password signal that runs later in the same request.
_SIGN_OUT_CHOICE_ATTR = "idp_sign_out_others"


def remember_sign_out_choice(request: HttpRequest, *, sign_out: bool) -> None:
    setattr(request, _SIGN_OUT_CHOICE_ATTR, bool(sign_out))


def sign_out_choice(request: HttpRequest | None, *, default: bool) -> bool:
    """What the password form chose; `default` when no form asked (e.g. another flow)."""
    return bool(getattr(request, _SIGN_OUT_CHOICE_ATTR, default))
