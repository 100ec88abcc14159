"""What this browser session knows about its own sign-in: session id (`sid`), time, methods.

OIDC Core §2: `auth_time` is when *this* session authenticated (DOT uses `user.last_login`,
which another browser can move). OIDC Back-Channel Logout §2.1 / Front-Channel §3: `sid`
identifies the session to clients without exposing the session key.
"""

from __future__ import annotations

import secrets
import time

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

SID_KEY = "idp_sid"
AUTH_TIME_KEY = "idp_auth_time"


def start_session_context(*, request: HttpRequest, user: AbstractBaseUser) -> None:
    """Called on every sign-in: a fresh sid and the authentication time for this session."""
    request.session[SID_KEY] = secrets.token_urlsafe(32)
    request.session[AUTH_TIME_KEY] = int(time.time())


def get_sid(request: HttpRequest) -> str:
    """This session's sid ("" when not signed in)."""
    return str(request.session.get(SID_KEY, ""))


def get_auth_time(request: HttpRequest) -> int | None:
    """Unix time at which this session's user authenticated, or None when not signed in."""
    value = request.session.get(AUTH_TIME_KEY)
    return int(value) if value is not None else None


# The answer to "sign out everywhere else" on a password form, kept on the request for the
# receiver of allauth's password signal that runs later in the same request.
_SIGN_OUT_CHOICE_ATTR = "idp_sign_out_others"


def remember_sign_out_choice(request: HttpRequest, *, sign_out: bool) -> None:
    setattr(request, _SIGN_OUT_CHOICE_ATTR, bool(sign_out))


def sign_out_choice(request: HttpRequest | None, *, default: bool) -> bool:
    """What the password form chose; `default` when no form asked (e.g. another flow)."""
    return bool(getattr(request, _SIGN_OUT_CHOICE_ATTR, default))
