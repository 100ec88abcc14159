"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): read the hint, end the session.

Ending the IdP session goes through allauth's logout (so Django's and allauth's sign-out
machinery and our audit receiver run). The calling client's tokens of this browser session
(`sid`) are revoked here; ending the session then tells every other app it signed in to
(OIDC Back-Channel Logout, `accounts.services.record_logout`) and revokes their tokens of this
session too. Other sessions keep theirs (DOT would delete every token of the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from django.db import transaction
from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.models import Client
from oauth_clients.oidc.authorization_policy import decode_id_token
from oauth_clients.oidc.backchannel import REASON_RP_LOGOUT, queue_session_logout
from oauth_clients.oidc.tokens import revoke_tokens


@dataclass(frozen=True)
class LogoutHint:
    """What a verified `id_token_hint` says: for which client, which user, which session."""

    client: Client
    user_id: str
    sid: str


def read_id_token_hint(*, token: str, issuer: str) -> LogoutHint | None:
    """The hint's client, user and session when we signed it with any published key.

    Expired hints are accepted (RP-Initiated Logout §2: the hint names a past session).
    """
    claims = decode_id_token(token, issuer=issuer, accept_expired=True)
    if claims is None:
        return None
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else list(audience or [])
    client_id = claims.get("azp") or (audiences[0] if len(audiences) == 1 else None)
    if not isinstance(client_id, str) or client_id not in audiences:
        return None
    client = Client.objects.filter(client_id=client_id).first()
    if client is None:
        return None
    return LogoutHint(
        client=client, user_id=str(claims.get("sub", "")), sid=str(claims.get("sid", ""))
    )


def hint_matches_session(*, hint: LogoutHint, user: Any, sid: str) -> bool:
    """The hint was issued to this signed-in user in this browser session."""
    if not getattr(user, "is_authenticated", False) or hint.user_id != str(user.pk):
        return False
    return not hint.sid or hint.sid == sid


@transaction.atomic
def revoke_session_tokens(*, client: Client, sid: str) -> int:
    """Revoke what session `sid` obtained for `client`; returns how many tokens died."""
    if not sid:
        return 0
    counts = revoke_tokens(client=client, sid=sid)
    return counts.access_tokens + counts.refresh_tokens


def end_session(*, request: HttpRequest, client: Client | None, sid: str) -> None:
    """Sign the browser out of the IdP; revoke the calling client's tokens of this session."""
    user = request.user
    if not user.is_authenticated:
        return
    if client is not None:
        with transaction.atomic():
            # Told before its tokens go, like every app of the session (`user_logged_out`).
            queue_session_logout(sid=sid, user=user, reason=REASON_RP_LOGOUT)
            revoked = revoke_session_tokens(client=client, sid=sid)
        if revoked:
            record_event(
                type=AuditEvent.Type.TOKEN_REVOKED,
                request=request,
                subject=user,
                client=client,
                via="rp-initiated logout",
                tokens=revoked,
            )
    # allauth's adapter signs out (Django's logout underneath: the session is flushed, and
    # user_logged_out is audited as LOGOUT).
    get_account_adapter(request).logout(request)
