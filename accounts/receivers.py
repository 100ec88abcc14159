"""Receivers for Django's and allauth's auth signals; each only hands over to a service function.

Django's `user_logged_in`/`user_logged_out` see every sign-in and sign-out (allauth's flows,
the seed's `login()`, the admin's logout, OIDC RP-initiated logout); allauth's `user_logged_in`
only its own sign-ins (where allauth.usersessions records the session); allauth's password
signals are the end of its change and reset flows.
"""

from __future__ import annotations

from typing import Any

from allauth.account import signals as account_signals
from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa import signals as mfa_signals
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from accounts import services
from accounts.audit import record_event
from accounts.models import AuditEvent
from accounts.sessions import sign_out_choice, start_session_context


@receiver(user_logged_in, dispatch_uid="accounts.session_context")
def _on_login_start_session_context(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        start_session_context(request=request, user=user)


@receiver(user_logged_in, dispatch_uid="accounts.record_login")
def _on_login_record(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    services.record_login(request=request, user=user)


@receiver(account_signals.user_logged_in, dispatch_uid="accounts.record_user_session")
def _on_login_record_user_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # allauth's own receiver of this signal is disconnected (accounts.apps.UserSessionsConfig).
    services.record_user_session(request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts.record_logout")
def _on_logout_record(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    services.record_logout(request=request, user=user)


@receiver(password_changed, dispatch_uid="accounts.password_changed")
@receiver(password_set, dispatch_uid="accounts.password_set")
def _on_password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The change and set forms record the answer to "sign out everywhere else"; a path
    # without the question signs out elsewhere.
    services.record_password_changed(
        request=request, user=user, sign_out_others=sign_out_choice(request, default=True)
    )


@receiver(password_reset, dispatch_uid="accounts.password_reset")
def _on_password_reset(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # The reset form asks too, ticked by default.
    services.record_password_reset(
        request=request, user=user, sign_out_everywhere=sign_out_choice(request, default=True)
    )


@receiver(mfa_signals.authentication_failed, dispatch_uid="accounts.mfa_failed")
def _on_mfa_failed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # A wrong code after the right password counts towards the per-account lock.
    services.record_failed_login(request=request, users=[user], reason="bad_second_factor")


@receiver(authenticator_added, dispatch_uid="accounts.mfa_added")
@receiver(authenticator_removed, dispatch_uid="accounts.mfa_removed")
@receiver(authenticator_reset, dispatch_uid="accounts.mfa_reset")
def _on_mfa_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    authenticator = kwargs.get("authenticator")
    change = {
        authenticator_added: "added",
        authenticator_removed: "removed",
        authenticator_reset: "reset",
    }.get(kwargs.get("signal"), "")
    record_event(
        type=AuditEvent.Type.MFA_CHANGED,
        request=request,
        actor=user,
        subject=user,
        authenticator_type=getattr(authenticator, "type", ""),
        change=change,
    )
