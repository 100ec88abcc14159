"""Our variant of one allauth login stage (plugged in by the adapter's `get_login_stages`)."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.account.stages import EmailVerificationStage


class TrustedAccountEmailVerificationStage(EmailVerificationStage):
    """allauth's mandatory email verification, except for accounts with no address at all.

    Self sign-up always asks for an address, so an account without one was made by an
    administrator or the seed API; those sign in at once (their addresses, when they have one,
    are recorded as verified by `accounts.services.record_trusted_email`).
    """

    def handle(self) -> tuple[Any, bool]:
        user = self.login.user
        no_address = user is not None and not user.email
        if no_address and not EmailAddress.objects.filter(user_id=user.pk).exists():
            return None, True
        return super().handle()
