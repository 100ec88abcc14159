"""User claims by scope: the one pure function behind ID tokens and userinfo (OIDC Core §5.4).

`build_claims(user=..., scopes=...)` reads the user and answers a new dict; it never sees a request
or a token, so the ID token and the userinfo response cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.base_user import AbstractBaseUser

# OIDC Core §5.4 (profile, email) plus our `groups` scope: which claims each scope releases.
SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "preferred_username", "updated_at"),
    "email": ("email", "email_verified"),
    "groups": ("groups",),
}
# Claims every ID token carries whatever the scope (OIDC Core §2, §3.1.3.6; RFC 8176).
ID_TOKEN_CLAIMS: tuple[str, ...] = (
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "amr",
)


def supported_claims() -> list[str]:
    """Every claim name we may release (discovery's `claims_supported`)."""
    names = [*ID_TOKEN_CLAIMS]
    for claims in SCOPE_CLAIMS.values():
        names.extend(claims)
    return names


def _profile_claims(user: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "name": user.get_full_name().strip(),
        "given_name": user.first_name.strip(),
        "family_name": user.last_name.strip(),
        "preferred_username": user.get_username(),
    }
    updated_at = getattr(user, "updated_at", None)
    if updated_at is not None:
        claims["updated_at"] = int(updated_at.timestamp())
    # OIDC Core §5.3.2: a claim without a value is omitted, not sent empty.
    return {key: value for key, value in claims.items() if value not in ("", None)}


def _email_claims(user: Any) -> dict[str, Any]:
    email = (user.email or "").strip()
    if not email:
        return {}
    verified = EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists()
    return {"email": email, "email_verified": verified}


def _group_claims(user: Any) -> dict[str, Any]:
    return {"groups": sorted(user.groups.values_list("name", flat=True))}


def build_claims(*, user: AbstractBaseUser, scopes: Iterable[str]) -> dict[str, Any]:
    """The user's claims released by `scopes` (`sub` included), as a new dict."""
    granted = set(scopes)
    claims: dict[str, Any] = {"sub": str(user.pk)}
    if "profile" in granted:
        claims.update(_profile_claims(user))
    if "email" in granted:
        claims.update(_email_claims(user))
    if "groups" in granted:
        claims.update(_group_claims(user))
    return claims
