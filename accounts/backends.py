"""The one authentication backend: allauth's (username or email) plus the per-account lock."""

from __future__ import annotations

from typing import Any

from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class LockoutAwareBackend(AuthenticationBackend):
    """allauth's backend (sign-in by username or email) that refuses locked accounts.

    A locked account cannot authenticate even with the right password. The lock stops new
    sign-ins only: `get_user` keeps Django's plain `is_active` test, so someone who fails on
    purpose against a colleague's username cannot sign that colleague out of their sessions.
    Inactive users are refused in both places (Django's rule).
    """

    def user_can_authenticate(self, user: Any) -> bool:
        is_locked = getattr(user, "is_locked", None)
        if is_locked is not None and is_locked():
            return False
        return super().user_can_authenticate(user)

    def _authenticate_by_email(self, email: str, password: str) -> Any:
        # allauth tries a username as an email address first (for apps that pass every login
        # as `username`). Every address has an "@" (EmailField), so without one that lookup
        # (two queries per sign-in) cannot find anyone; the time it takes depends only on the
        # typed login, not on which accounts exist.
        if "@" not in (email or ""):
            return None
        return super()._authenticate_by_email(email, password)

    def get_user(self, user_id: Any) -> Any:
        User = get_user_model()
        try:
            user = User._default_manager.get(pk=user_id)
        except User.DoesNotExist:
            return None
        # Django's own rule (is_active), without the lock test above.
        return user if ModelBackend.user_can_authenticate(self, user) else None
