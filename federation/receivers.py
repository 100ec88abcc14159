"""allauth's signals → federation services (audit of each upstream sign-in and link; a removal
is audited by `services.remove_identity`, the security centre's one way to remove one)."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import user_logged_in
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.signals import social_account_added
from django.dispatch import receiver

from federation import services


@receiver(user_logged_in, dispatch_uid="federation.upstream_sign_in")
def _on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    sociallogin = kwargs.get("sociallogin")
    if sociallogin is not None and request is not None:
        services.record_upstream_sign_in(request=request, user=user, sociallogin=sociallogin)


@receiver(social_account_added, dispatch_uid="federation.identity_linked")
def _on_linked(sender: Any, request: Any, sociallogin: Any, **kwargs: Any) -> None:
    connect = sociallogin.state.get("process") == AuthProcess.CONNECT
    how = "linked_by_user" if connect else "verified_email"
    services.record_link(request=request, account=sociallogin.account, how=how)
