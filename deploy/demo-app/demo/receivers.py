"""On every sign-in through the IdP: remember which IdP session (sub, sid) this session is."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import user_logged_in
from django.dispatch import receiver

from demo.models import OidcSession


@receiver(user_logged_in)
def remember_idp_session(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is None:
        return
    claims = (sociallogin.account.extra_data or {}).get("id_token") or {}
    if not request.session.session_key:
        request.session.save()
    OidcSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "user": user,
            "sub": str(claims.get("sub") or sociallogin.account.uid),
            "sid": str(claims.get("sid") or ""),
        },
    )
