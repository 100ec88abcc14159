"""User claims by scope: the one pure function behind ID tokens and userinfo (OIDC Core §5.4).

`build_claims(user=..., scopes=..., client=..., groups=...)` reads the user and answers a new
dict; it never sees a request or a token, so the ID token and the userinfo response cannot
drift apart. With the app (`client`) it adds what that app was granted
(`oauth_clients.access`): its roles under the claim it chose, the `groups` claim filtered for
it, and its mapped claims; `groups` is the person's groups as the caller read them once for
the request (`oauth_clients.access.EffectiveGroups`), read here when not given. A user read
with a token or a code by the engine's lookups brings that app's roles with it
(`oauth_clients.oidc.app_access.annotate_app_access`): the roles claim then costs no query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allauth.account.models import EmailAddress
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import F, Model, OuterRef, QuerySet

from idp.db.prepared import row_exists
from oauth_clients.access import APP_HAS_ROLES_ATTR, EffectiveGroups, app_claims
from oauth_clients.models import AppRole, Client

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


# Set on a user loaded by a query that also answered "is the address verified" (see below).
EMAIL_VERIFIED_ATTR = "idp_email_verified"


def _verified_addresses(user_id: Any, email: Any) -> QuerySet:
    """allauth's verified addresses of the user `user_id` whose text is `email` (case aside):
    the user's current address, read by `_email_claims` or by the annotation below."""
    return EmailAddress.objects.filter(user_id=user_id, verified=True, email__iexact=email)


def annotate_email_verified(queryset: QuerySet, user_field: str = "user") -> QuerySet:
    """`queryset` (which loads `user_field`) also answering `email_verified` for that user.

    An EXISTS in the query that already reads the token or code row and its user: every ID
    token and userinfo answer with the `email` scope used to spend a second query on it (a
    round trip plus an ORM compile, ~7 % of a refresh grant's CPU). Copy it
    onto the user with `carry_email_verified` after the row is fetched.

    The address is compared with the outer query's own user row (the join `select_related`
    makes, reused), not with a second join to the user table inside the subquery: with that
    join, the generic plan on small or never-analysed tables hashed every user and every
    verified address for each lookup, `upper()` on each (0.2-0.4 ms of PostgreSQL CPU per
    refresh grant with 200 users).
    """
    verified = _verified_addresses(OuterRef(f"{user_field}_id"), OuterRef(f"{user_field}__email"))
    return queryset.annotate(**{EMAIL_VERIFIED_ATTR: row_exists(verified)})


def carry_email_verified(instance: Model | None, user_field: str = "user") -> None:
    """Move the annotation of `annotate_email_verified` onto the loaded user."""
    user = getattr(instance, user_field, None) if instance is not None else None
    if user is not None and hasattr(instance, EMAIL_VERIFIED_ATTR):
        setattr(user, EMAIL_VERIFIED_ATTR, getattr(instance, EMAIL_VERIFIED_ATTR))


def _email_claims(user: Any) -> dict[str, Any]:
    email = (user.email or "").strip()
    if not email:
        return {}
    verified = getattr(user, EMAIL_VERIFIED_ATTR, None)
    if verified is None:  # a user not loaded through `annotate_email_verified`
        verified = _verified_addresses(user.pk, F("user__email")).exists()
    return {"email": email, "email_verified": bool(verified)}


def annotate_app_has_roles(queryset: QuerySet, app_field: str = "application") -> QuerySet:
    """`queryset` (which loads `app_field`) also answering whether that app defines roles.

    The roles claim is sent only by an app that defines roles; knowing it in the query that
    already reads the token or code row spares every other app a query of its own on each ID
    token and userinfo answer. Copy it onto the app with `carry_app_has_roles`."""
    defined = AppRole.objects.filter(client_id=OuterRef(f"{app_field}_id"))
    return queryset.annotate(**{APP_HAS_ROLES_ATTR: row_exists(defined)})


def carry_app_has_roles(instance: Model | None, app_field: str = "application") -> None:
    """Move the annotation of `annotate_app_has_roles` onto the loaded app."""
    app = getattr(instance, app_field, None) if instance is not None else None
    if app is not None and hasattr(instance, APP_HAS_ROLES_ATTR):
        setattr(app, APP_HAS_ROLES_ATTR, getattr(instance, APP_HAS_ROLES_ATTR))


def build_claims(
    *,
    user: AbstractBaseUser,
    scopes: Iterable[str],
    client: Client | None = None,
    groups: EffectiveGroups | None = None,
) -> dict[str, Any]:
    """The user's claims released by `scopes` (`sub` included), as a new dict; with `client`,
    also what that app was granted. `groups`: the user's groups, read once by the caller.

    The `groups` claim holds the person's groups and the groups above them (a member of a
    group is a member of its ancestors), filtered by the app's choice (all, a prefix, a list):
    an app never sees a group it was not granted."""
    granted = set(scopes)
    claims: dict[str, Any] = {"sub": str(user.pk)}
    if "profile" in granted:
        claims.update(_profile_claims(user))
    if "email" in granted:
        claims.update(_email_claims(user))
    if groups is None:
        groups = EffectiveGroups(user_id=user.pk)  # read only if a claim below needs it
    if client is not None:
        # The app's own claim names never collide with the standard ones (refused upstream,
        # `oauth_clients.models.RESERVED_CLAIM_NAMES`); the standard claims stay on top anyway.
        for name, value in app_claims(
            user=user, client=client, groups=groups, granted=granted
        ).items():
            claims.setdefault(name, value)
    elif "groups" in granted:
        claims["groups"] = groups.names
    return claims
