"""What the sign-in page needs of the providers, from the shared cache: the page itself runs no
query (tests/oidc/test_signin_query_counts.py), and the main form's address check neither."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from federation.models import UpstreamProvider

CACHE_KEY = "federation:sign-in-options:v1"
CACHE_SECONDS = 300


@dataclass(frozen=True)
class SignInOption:
    slug: str
    name: str
    kind: str
    show_on_sign_in: bool
    domains: tuple[str, ...]


def sign_in_options() -> list[SignInOption]:
    """The enabled providers (cached; `forget_sign_in_options` after every change)."""
    options = cache.get(CACHE_KEY)
    if options is None:
        options = [
            SignInOption(
                slug=row.slug,
                name=row.name,
                kind=row.kind,
                show_on_sign_in=row.show_on_sign_in,
                domains=tuple(row.domains),
            )
            for row in UpstreamProvider.objects.filter(enabled=True)
        ]
        cache.set(CACHE_KEY, options, CACHE_SECONDS)
    return list(options)


def option_for_address(email: str) -> SignInOption | None:
    """Home-realm discovery: the enabled provider serving `email`'s domain, if any."""
    _local, at, domain = email.strip().lower().rpartition("@")
    if not at or not domain:
        return None
    for option in sign_in_options():
        if domain in option.domains:
            return option
    return None


def option_for_slug(slug: str) -> SignInOption | None:
    """The enabled provider named `slug`, if any."""
    return next((option for option in sign_in_options() if option.slug == slug), None)


def option_for_hints(*, idp_hint: str, login_hint: str) -> SignInOption | None:
    """The provider an app's authorization request points at: the one its `kc_idp_hint` names
    (Keycloak's parameter, which admins of apps moving from Keycloak already send), else the one
    serving its `login_hint`'s domain (OIDC Core §3.1.2.1). A hint naming no enabled provider
    points at none: the sign-in page is shown as without it."""
    if idp_hint:
        option = option_for_slug(idp_hint)
        if option is not None:
            return option
    if "@" in login_hint:
        return option_for_address(login_hint)
    return None


def forget_sign_in_options() -> None:
    """After the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))
