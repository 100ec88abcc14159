"""Who must use a second factor, whether this session did, and how recent its sign-in is.

The session's methods are read the way the ID token's `amr` is built (RFC 8176, from allauth's
records of this session: `accounts.sessions.session_binding`), so the admin gate, the
step-up for `Client.requires_mfa` and the token agree on what "used a second factor" means.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.db.models import OuterRef
from django.http import HttpRequest

from accounts.sessions import has_second_factor, last_authenticated_at, session_binding
from idp.db.prepared import row_exists

# The factors that make a sign-in two-step (recovery codes only stand in for them).
SECOND_FACTOR_TYPES = [Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]

# Set by the sign-in lookup (accounts.backends) on the user it loads: allauth's
# `is_mfa_enabled(user, SECOND_FACTOR_TYPES)`, the question of its login stage
# (allauth.mfa.stages.AuthenticateStage) and of `has_enrolled_second_factor`.
HAS_SECOND_FACTOR = "signin_has_second_factor"


def has_second_factor_annotation() -> dict[str, Any]:
    """The `HAS_SECOND_FACTOR` annotation for a User queryset (allauth's query, as a subquery)."""
    return {
        HAS_SECOND_FACTOR: row_exists(
            Authenticator.objects.filter(user_id=OuterRef("pk"), type__in=SECOND_FACTOR_TYPES)
        )
    }


class MFAAdapter(DefaultMFAAdapter):
    """allauth's MFA adapter (MFA_ADAPTER), taking the sign-in lookup's answer when it has one."""

    def is_mfa_enabled(self, user: Any, types: Any = None) -> bool:
        # Only the question the annotation answers (TOTP or WebAuthn); any other `types`
        # (None: any authenticator, recovery codes included) is allauth's own query. The
        # annotation lives on the User instance loaded for one sign-in request, so it never
        # outlives that request (later requests load the user afresh, without it).
        if types is not None:
            types = list(types)
            known = getattr(user, HAS_SECOND_FACTOR, None)
            if known is not None and frozenset(types) == frozenset(SECOND_FACTOR_TYPES):
                return bool(known)
        return super().is_mfa_enabled(user, types=types)


def mfa_required(user: Any) -> bool:
    """Staff and superusers must sign in to the admin with a second factor
    (IDP_STAFF_MFA_REQUIRED, on unless switched off)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(settings.IDP_STAFF_MFA_REQUIRED and (user.is_staff or user.is_superuser))


def has_enrolled_second_factor(user: Any) -> bool:
    return bool(is_mfa_enabled(user, SECOND_FACTOR_TYPES))


def must_enrol(user: Any) -> bool:
    """Required to use a second factor, and none set up yet."""
    return mfa_required(user) and not has_enrolled_second_factor(user)


def session_used_second_factor(request: HttpRequest) -> bool:
    """This browser session's sign-in (or a re-authentication since) used a second factor."""
    return has_second_factor(session_binding(request).amr)


def recently_authenticated(request: HttpRequest | None) -> bool:
    """Signed in or re-authenticated within ACCOUNT_REAUTHENTICATION_TIMEOUT seconds."""
    if request is None or not hasattr(request, "session"):
        return False
    last = last_authenticated_at(request)
    if last is None:
        return False
    return time.time() - last < settings.ACCOUNT_REAUTHENTICATION_TIMEOUT


def second_factor_url(request: HttpRequest, *, next_url: str) -> str | None:
    """allauth's re-authentication with a second factor (code or security key), or None when
    the user has none."""
    methods = get_account_adapter(request).get_reauthentication_methods(request.user)
    for method in methods:
        if str(method["id"]).startswith("mfa_"):
            return f"{method['url']}?{urlencode({'next': next_url})}"
    return None
