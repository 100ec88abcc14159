"""Authentication backend that refuses locked accounts, whatever the password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend


class LockoutAwareModelBackend(ModelBackend):
    """Django's ModelBackend plus the per-account lock: a locked user cannot authenticate."""

    def user_can_authenticate(self, user: Any) -> bool:
        if getattr(user, "is_locked", None) is not None and user.is_locked():
            return False
        return super().user_can_authenticate(user)
