"""Our variant of one allauth login stage (plugged in by the adapter's `get_login_stages`)."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.account.stages import EmailVerificationStage
from django.db.models import OuterRef

from idp.db.prepared import row_exists

# Set by the sign-in lookup (accounts.backends) on the user it loads: allauth's
# `has_verified_email(user)` (any verified address of the user), read in the same statement.
# Valid for the request that loaded that User instance only (no other request sees it).
HAS_VERIFIED_EMAIL = "signin_has_verified_email"


def has_verified_email_annotation() -> dict[str, Any]:
    """The `HAS_VERIFIED_EMAIL` annotation for a User queryset (allauth's query, as a subquery)."""
    return {
        HAS_VERIFIED_EMAIL: row_exists(
            EmailAddress.objects.filter(user_id=OuterRef("pk"), verified=True)
        )
    }


class TrustedAccountEmailVerificationStage(EmailVerificationStage):
    """allauth's mandatory email verification, except for accounts with no address at all.

    Self sign-up always asks for an address, so an account without one was made by an
    administrator or the seed API; those sign in at once (their addresses, when they have one,
    are recorded as verified by `accounts.services.record_trusted_email`).
    """

    def handle(self) -> tuple[Any, bool]:
        user = self.login.user
        # A verified address lets allauth's stage through whatever the verification setting
        # (it only acts on `not has_verified_email`). The annotation answers allauth's question
        # for a sign-in without an address (`login.email` unset: any verified address); a
        # sign-in by address asks about that address, so allauth reads it.
        if not self.login.email and getattr(user, HAS_VERIFIED_EMAIL, False):
            return None, True
        no_address = user is not None and not user.email
        if no_address and not EmailAddress.objects.filter(user_id=user.pk).exists():
            return None, True
        return super().handle()
