"""allauth adapter: our policy hooks into allauth's account flows (never a fork of the flows)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.http import HttpRequest


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self sign-up is closed by default; IDP_SIGNUP_OPEN=1 opens it (email verification stays
        # mandatory through ACCOUNT_EMAIL_VERIFICATION).
        return bool(settings.IDP_SIGNUP_OPEN)
