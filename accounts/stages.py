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
        typed = self.login.email
        if typed and user is not None:
            # allauth's own question for a sign-in by address (`has_verified_email(user,
            # email)`), asked here once, read for two answers.
            verified = list(
                EmailAddress.objects.filter(user_id=user.pk, email__iexact=typed).values_list(
                    "verified", flat=True
                )[:1]
            )
            if verified and verified[0]:
                return None, True  # a verified address: allauth's stage lets it through
            if not verified:
                # allauth takes any typed value with an @ for an address
                # (`derive_login_method`), but this one named the account without being one of
                # its addresses (a directory's userPrincipalName, directory/backend.py, or a
                # user name with an @): a sign-in by name, whose question is any verified
                # address, never a code sent to that value.
                self.login.email = None
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
