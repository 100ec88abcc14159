"""Logout token validation (OpenID Connect Back-Channel Logout 1.0 §2.6). Pure: no Django.

The IdP POSTs `logout_token=<JWT>` to the app's back-channel logout URI when a user's session
ends there. The receiver must check the token exactly as §2.6 says before ending any session:

1. a JWT signed by the IdP (a key from its JWKS, never `alg: none` or an HMAC with a public key),
2. `iss` is the IdP, `aud` contains our client id, `iat` present, not expired (`exp`),
3. `events` holds the back-channel-logout member (a JSON object),
4. `sub`, `sid` or both are present,
5. no `nonce` (so an ID token can never be replayed as a logout token),
6. `jti` present, so the caller can refuse a replay (§2.6 step 10, optional for the RP).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# Asymmetric algorithms only: a symmetric one would let anyone holding the public JWKS sign.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
# §2.4: explicit typing is RECOMMENDED ("logout+jwt"); tokens without `typ` are still valid.
ALLOWED_TYPES = {None, "JWT", "logout+jwt", "application/logout+jwt"}
CLOCK_SKEW_SECONDS = 60


class LogoutTokenError(ValueError):
    """The token fails one of the §2.6 checks; the message says which (safe to return)."""


@dataclass(frozen=True)
class LogoutClaims:
    sub: str
    sid: str
    jti: str
    exp: int


def _key_for(header: dict[str, Any], jwks: dict[str, Any]) -> Any:
    keys = [key for key in jwks.get("keys", []) if key.get("use", "sig") == "sig"]
    kid = header.get("kid")
    if kid is not None:
        keys = [key for key in keys if key.get("kid") == kid]
    if len(keys) != 1:
        raise LogoutTokenError("no single signing key of the IdP matches the token's kid")
    return jwt.PyJWK.from_json(json.dumps(keys[0])).key


def verify_logout_token(
    token: str,
    *,
    issuer: str,
    client_id: str,
    jwks: dict[str, Any],
    now: float | None = None,
) -> LogoutClaims:
    """The token's subject and session when every §2.6 check passes; LogoutTokenError if not."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise LogoutTokenError("the logout token is not a JWT") from error
    algorithm = header.get("alg")
    if algorithm not in ALLOWED_ALGORITHMS:
        raise LogoutTokenError(f"the algorithm {algorithm!r} is not accepted")
    if header.get("typ") not in ALLOWED_TYPES:
        raise LogoutTokenError("the token's typ is not logout+jwt")
    key = _key_for(header, jwks)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=client_id,
            issuer=issuer,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "aud", "iat", "exp", "jti"], "verify_iat": True},
        )
        if now is not None and claims["exp"] + CLOCK_SKEW_SECONDS < now:
            raise jwt.ExpiredSignatureError("expired")
    except jwt.PyJWTError as error:
        raise LogoutTokenError(f"the logout token is invalid: {error}") from error
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise LogoutTokenError("the events claim lacks the back-channel logout event")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not sub and not sid:
        raise LogoutTokenError("the logout token names neither sub nor sid")
    if (sub is not None and not isinstance(sub, str)) or (
        sid is not None and not isinstance(sid, str)
    ):
        raise LogoutTokenError("sub and sid must be strings")
    if "nonce" in claims:
        raise LogoutTokenError("a logout token must not contain a nonce")
    if not isinstance(claims["jti"], str) or not claims["jti"]:
        raise LogoutTokenError("jti must be a non-empty string")
    return LogoutClaims(sub=sub or "", sid=sid or "", jti=claims["jti"], exp=int(claims["exp"]))


def seconds_until_expiry(claims: LogoutClaims, *, now: float | None = None) -> int:
    """How long a replay cache must remember this token's jti."""
    return max(1, int(claims.exp - (now or time.time())) + CLOCK_SKEW_SECONDS)
