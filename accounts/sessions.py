"""What this browser session knows about its own sign-in: session id (`sid`), time, methods
(the session binding every ID token and second-factor check reads).

OIDC Core §2: `auth_time` is when *this* session authenticated (DOT uses `user.last_login`,
which another browser can move). OIDC Back-Channel Logout §2.1 / Front-Channel §3: `sid`
identifies the session to clients without exposing the session key.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from allauth.account.authentication import get_authentication_records
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest

from idp.client_ip import client_ip

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


# --- Session binding: how this session signed in (RFC 8176 `amr`, OIDC Core §2 `acr`) ---------
# What an ID token and a second-factor check say of this session; the protocol engine and the
# account policy (accounts/mfa_policy.py) both read it from here.

# RFC 8176 §2 values for allauth's recorded authentication methods.
_FACTOR_PASSWORD = "pwd"  # noqa: S105 (RFC 8176 method name, not a secret)
_FACTOR_OTP = "otp"
_FACTOR_HARDWARE_KEY = "hwk"
# RFC 8176 §2 "fed": signed in through an upstream identity provider (allauth's "socialaccount").
FACTOR_FEDERATED = "fed"
_MFA_TYPE_AMR = {
    "totp": _FACTOR_OTP,
    "recovery_codes": _FACTOR_OTP,
    "webauthn": _FACTOR_HARDWARE_KEY,
}
# OpenID EAP ACR Values 1.0 §2: "phr", phishing-resistant authentication (WebAuthn).
ACR_PHISHING_RESISTANT = "phr"
# OpenID PAPE 1.0 §4: multi-factor authentication (a password and a one-time code).
ACR_MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


@dataclass(frozen=True)
class SessionBinding:
    """What the authorization response binds the code to: this browser session's sign-in."""

    sid: str = ""
    auth_time: int | None = None
    amr: list[str] = field(default_factory=list)
    acr: str = ""


# The upstream sign-in of this session whose provider's second factor counts as ours: [provider,
# uid] of allauth's record of it (written by the federation app when the provider is trusted for
# it and its ID token said a second factor was used; removed by any other upstream sign-in).
UPSTREAM_MFA_KEY = "idp_upstream_mfa"


def record_upstream_mfa(request: HttpRequest, *, provider: str, uid: str, trusted: bool) -> None:
    """Whether the upstream sign-in just recorded (provider, uid) counts as multi-factor."""
    if trusted:
        request.session[UPSTREAM_MFA_KEY] = [provider, uid]
    else:
        request.session.pop(UPSTREAM_MFA_KEY, None)


def authentication_methods(records: list[dict[str, Any]], *, upstream_mfa: Any = None) -> list[str]:
    """RFC 8176 `amr` values from allauth's records of this session's authentication steps.

    A session whose sign-in allauth did not record (Django's admin login, test logins) signed in
    with a password: every other way in (passkey, emailed code, an upstream provider) leaves a
    record. An upstream sign-in is "fed", and "mfa" too when `upstream_mfa` names it
    (`record_upstream_mfa`).
    """
    amr: set[str] = set()
    signed_in_by_record = False
    trusted_upstream_mfa = False
    for record in records:
        method = record.get("method")
        if method in {"password", "password_reset"}:
            amr.add(_FACTOR_PASSWORD)
            signed_in_by_record = True
        elif method == "code":
            amr.add(_FACTOR_OTP)
            signed_in_by_record = True
        elif method == "mfa":
            amr.add(_MFA_TYPE_AMR.get(str(record.get("type")), _FACTOR_OTP))
            signed_in_by_record = signed_in_by_record or bool(record.get("passwordless"))
        elif method == "socialaccount":
            amr.add(FACTOR_FEDERATED)
            signed_in_by_record = True
            if upstream_mfa == [record.get("provider"), record.get("uid")]:
                trusted_upstream_mfa = True
    if not signed_in_by_record:
        amr.add(_FACTOR_PASSWORD)
    # RFC 8176 §2 "mfa": more than one kind of factor in this session.
    if len(amr) > 1 or trusted_upstream_mfa:
        amr.add("mfa")
    return sorted(amr)


def authentication_context(amr: list[str]) -> str:
    """OIDC Core §2 `acr` for these methods: "phr" with a WebAuthn key, the PAPE multi-factor
    policy with another second factor, "" (no claim) for a password alone."""
    if _FACTOR_HARDWARE_KEY in amr:
        return ACR_PHISHING_RESISTANT
    if "mfa" in amr:
        return ACR_MULTI_FACTOR
    return ""


def has_second_factor(amr: list[str]) -> bool:
    """RFC 8176: more than a password (`mfa`), or a hardware-bound authenticator (`hwk`:
    WebAuthn / passkeys, which verify the user on the device)."""
    return bool({"mfa", _FACTOR_HARDWARE_KEY} & set(amr))


def last_authenticated_at(request: HttpRequest) -> int | None:
    """Unix time of this session's latest authentication, re-authentication included.

    `accounts.sessions.get_auth_time` is the sign-in time; allauth's re-authentication
    (`prompt=login`, `max_age`) records a newer step without a new sign-in, and OIDC Core §2
    `auth_time` is when the user last actually authenticated.
    """
    signed_in_at = get_auth_time(request)
    if signed_in_at is None:
        return None
    user = getattr(request, "user", None)
    steps = [
        int(record["at"])
        for record in get_authentication_records(request, user)
        if isinstance(record.get("at"), int | float)
    ]
    return max([signed_in_at, *steps])


def session_binding(request: HttpRequest) -> SessionBinding:
    """The signed-in session's sid, authentication time and methods (empty when anonymous)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return SessionBinding()
    amr = authentication_methods(
        get_authentication_records(request, user),
        upstream_mfa=request.session.get(UPSTREAM_MFA_KEY),
    )
    return SessionBinding(
        sid=get_sid(request),
        auth_time=last_authenticated_at(request),
        amr=amr,
        acr=authentication_context(amr),
    )
