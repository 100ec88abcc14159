"""Consent: what a user allowed a client to see, remembered per user, client and scope set.

Selectors answer whether a request needs the consent screen; services record the user's answer
and write the audit row. A remembered consent covers any request for the same scopes or fewer;
a request for more asks again (OIDC Core §3.1.2.4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.models import Client, Consent


def scope_text(scopes: Iterable[str]) -> str:
    """The stored form of a scope set: space-separated, sorted, no duplicates."""
    return " ".join(sorted(set(scopes)))


def consent_covers(*, user: Any, client: Client, scopes: Iterable[str]) -> bool:
    """True when the user already allowed `client` at least these scopes, or it is trusted."""
    if client.is_trusted:
        return True
    if user is None or not user.is_authenticated:
        return False
    consent = Consent.objects.filter(user=user, client=client).only("scopes").first()
    return consent is not None and set(scopes) <= consent.scope_set()


@transaction.atomic
def grant_consent(
    *, user: Any, client: Client, scopes: Iterable[str], request: HttpRequest | None = None
) -> Consent:
    """Remember the user's "Allow": the new scopes join any previously allowed ones."""
    requested = set(scopes)
    consent = Consent.objects.select_for_update().filter(user=user, client=client).first()
    if consent is None:
        consent = Consent.objects.create(user=user, client=client, scopes=scope_text(requested))
    else:
        consent.scopes = scope_text(consent.scope_set() | requested)
        consent.last_used_at = timezone.now()
        consent.save(update_fields=["scopes", "last_used_at"])
    record_event(
        type=AuditEvent.Type.CONSENT_GRANTED,
        request=request,
        actor=user,
        subject=user,
        client=client,
        scopes=scope_text(requested),
    )
    return consent


def record_consent_denied(
    *, user: Any, client: Client, scopes: Iterable[str], request: HttpRequest | None = None
) -> None:
    """Audit the user's "Deny" (nothing is remembered: the next request asks again)."""
    record_event(
        type=AuditEvent.Type.CONSENT_DENIED,
        request=request,
        actor=user,
        subject=user,
        client=client,
        scopes=scope_text(scopes),
    )


def mark_consent_used(*, user: Any, client: Client) -> None:
    """Stamp when a remembered consent last let a sign-in through without the screen."""
    Consent.objects.filter(user=user, client=client).update(last_used_at=timezone.now())


@transaction.atomic
def revoke_consent(
    *, user: Any, client: Client, actor: Any = None, request: HttpRequest | None = None
) -> bool:
    """Forget the user's consent for `client`: the next sign-in shows the screen again."""
    deleted, _ = Consent.objects.filter(user=user, client=client).delete()
    if deleted:
        record_event(
            type=AuditEvent.Type.CONSENT_REVOKED,
            request=request,
            actor=actor or user,
            subject=user,
            client=client,
        )
    return bool(deleted)
