"""allauth adapter: our policy hooks into allauth's account flows (never a fork of the flows)."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.stagekit import clear_login
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest
from django.shortcuts import redirect

from accounts import services
from accounts.selectors import users_for_credentials


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self sign-up is closed by default; IDP_SIGNUP_OPEN=1 opens it (email verification stays
        # mandatory through ACCOUNT_EMAIL_VERIFICATION).
        return bool(settings.IDP_SIGNUP_OPEN)

    def get_login_stages(self) -> list[str]:
        stages = super().get_login_stages()
        return [
            "accounts.stages.TrustedAccountEmailVerificationStage"
            if stage == "allauth.account.stages.EmailVerificationStage"
            else stage
            for stage in stages
        ]

    # --- Password sign-in: the per-account lock on top of allauth's rate limits ---------------

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        user = super().authenticate(request, **credentials)
        if user is not None and getattr(user, "is_locked", lambda: False)():
            # allauth hands back a user whose password matched but whom the backend refused
            # (to show the "inactive" page). A locked account gets the wrong-password answer
            # instead: the lock must not reveal that the password was right.
            services.record_failed_login(request=request, users=[user], reason="locked")  # type: ignore[list-item]
            return None
        return user

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        users = users_for_credentials(credentials)
        reason = "bad_password" if users else "unknown_account"
        if users and all(user.is_locked() for user in users):
            reason = "locked"
        services.record_failed_login(request=request, users=users, reason=reason)

    def pre_login(self, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> Any:
        response = super().pre_login(request, user, **kwargs)
        if response is not None:
            # allauth refused the sign-in (inactive account).
            services.record_failed_login(request=request, users=[user], reason="inactive")  # type: ignore[list-item]
            return response
        if getattr(user, "password_reset_required", False):
            # An administrator forced a reset: the old password no longer opens a session.
            clear_login(request)
            services.record_failed_login(
                request=request,
                users=[user],  # type: ignore[list-item]
                reason="password_reset_required",
            )
            return redirect("account_password_reset_required")
        return None

    def format_email_subject(self, subject: str) -> str:
        # Emails carry the company's name, not the host name (no django.contrib.sites here).
        return f"[{settings.IDP_COMPANY_NAME}] {subject}"

    # --- Passwords ------------------------------------------------------------------------

    def set_password(self, user: AbstractBaseUser, password: str) -> None:
        # Used by allauth's change, set and reset flows: a user-chosen password satisfies a
        # forced reset.
        services.set_password(user=user, password=password)  # type: ignore[arg-type]

    def send_password_reset_mail(
        self, user: AbstractBaseUser, email: str, context: dict[str, Any]
    ) -> None:
        services.record_password_reset_requested(request=context.get("request"), user=user)  # type: ignore[arg-type]
        super().send_password_reset_mail(user, email, context)
