"""Receivers for Django's auth signals; each only hands over to a service function."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from accounts.sessions import start_session_context


@receiver(user_logged_in, dispatch_uid="accounts.session_context")
def _on_login_start_session_context(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        start_session_context(request=request, user=user)
