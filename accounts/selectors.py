"""Queries (no writes): who a sign-in named, and what the security centre shows a user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from allauth.account.utils import filter_users_by_email, filter_users_by_username
from allauth.usersessions.models import UserSession
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.settings import oauth2_settings

from accounts.devices import describe_user_agent
from accounts.models import AuditEvent, User
from oauth_clients.models import Client, Consent


def users_for_credentials(credentials: dict[str, Any]) -> list[User]:
    """The accounts a sign-in attempt named, found the way allauth's backend finds them.

    allauth's login form passes `email` (when the login looks like an address) and `username`
    (always, because usernames may look like addresses); both may name the same account.
    """
    found: dict[int, User] = {}
    email = credentials.get("email")
    if email:
        for user in filter_users_by_email(email, prefer_verified=True):
            found[user.pk] = user
    username = credentials.get("username")
    if username:
        # The one account whose username matches case-insensitively (allauth's backend signs
        # in only when exactly one does).
        named = [
            user
            for user in filter_users_by_username(username)
            if user.get_username().lower() == username.lower()
        ]
        if len(named) == 1:
            found[named[0].pk] = named[0]  # type: ignore[assignment]
        if not email and "@" in username:
            # Other callers pass an address as `username` (allauth's backend tries it as email).
            for user in filter_users_by_email(username, prefer_verified=True):
                found[user.pk] = user
    return list(found.values())


# --- The security centre (/account/) ----------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """One signed-in browser of the user, as the sessions page shows it."""

    session: UserSession
    device: str
    is_current: bool


def active_sessions(*, user: User, current_session_key: str | None) -> list[SessionRow]:
    """Every signed-in browser of the user, this one first, then the most recently active.

    allauth's `purge_and_list` drops sessions that ended meanwhile (expired, signed out, or
    whose password hash went stale)."""
    rows = [
        SessionRow(
            session=session,
            device=describe_user_agent(session.user_agent),
            is_current=session.session_key == current_session_key,
        )
        for session in UserSession.objects.purge_and_list(user)
    ]
    return sorted(rows, key=lambda row: (not row.is_current, -row.session.last_seen_at.timestamp()))


@dataclass(frozen=True)
class ConnectedApp:
    """An app the user let in: a remembered consent, live tokens, or both."""

    client: Client
    scopes: list[dict[str, str]]
    granted_at: datetime | None
    last_used_at: datetime | None
    live_tokens: int
    remembered_consent: bool


def _live_refresh_tokens(user: User, now: datetime) -> QuerySet[Any]:
    return get_refresh_token_model().objects.filter(
        Q(expires__isnull=True) | Q(expires__gt=now),
        Q(family_expires__isnull=True) | Q(family_expires__gt=now),
        user=user,
        revoked__isnull=True,
    )


def connected_apps(*, user: User, now: datetime | None = None) -> list[ConnectedApp]:
    """Every client the user consented to or holds live tokens for, most recently used first."""
    now = now or timezone.now()
    found: dict[int, dict[str, Any]] = {}

    def entry(client_id: int) -> dict[str, Any]:
        return found.setdefault(
            client_id,
            {"scopes": set(), "granted": None, "used": [], "tokens": 0, "consent": False},
        )

    for consent in Consent.objects.filter(user=user):
        item = entry(consent.client_id)
        item["scopes"] |= consent.scope_set()
        item["granted"] = consent.created_at
        item["used"] += [consent.created_at, consent.last_used_at]
        item["consent"] = True
    access = get_access_token_model().objects.filter(user=user, expires__gt=now)
    for client_id, scope, created in access.exclude(application=None).values_list(
        "application_id", "scope", "created"
    ):
        item = entry(client_id)
        item["scopes"] |= set(scope.split())
        item["used"].append(created)
        item["tokens"] += 1
    refresh = _live_refresh_tokens(user, now).exclude(application=None)
    for client_id, updated in refresh.values_list("application_id", "updated"):
        item = entry(client_id)
        item["used"].append(updated)
        item["tokens"] += 1
    clients = Client.objects.in_bulk(list(found))
    descriptions = oauth2_settings.SCOPES
    apps = []
    for client_id, item in found.items():
        client = clients.get(client_id)
        if client is None:
            continue
        used = [moment for moment in item["used"] if moment is not None]
        apps.append(
            ConnectedApp(
                client=client,
                scopes=[
                    {"name": scope, "description": descriptions.get(scope, scope)}
                    for scope in sorted(item["scopes"])
                ],
                granted_at=item["granted"],
                last_used_at=max(used) if used else None,
                live_tokens=item["tokens"],
                remembered_consent=item["consent"],
            )
        )
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(apps, key=lambda app: (app.last_used_at or epoch, app.client.name), reverse=True)


# What the user sees of the audit log about their own account (not token bookkeeping).
ACTIVITY_TYPES = [
    AuditEvent.Type.LOGIN_SUCCEEDED,
    AuditEvent.Type.LOGIN_FAILED,
    AuditEvent.Type.LOGOUT,
    AuditEvent.Type.ACCOUNT_LOCKED,
    AuditEvent.Type.ACCOUNT_UNLOCKED,
    AuditEvent.Type.PASSWORD_CHANGED,
    AuditEvent.Type.PASSWORD_RESET_REQUESTED,
    AuditEvent.Type.PASSWORD_RESET,
    AuditEvent.Type.PASSWORD_RESET_FORCED,
    AuditEvent.Type.MFA_CHANGED,
    AuditEvent.Type.SESSIONS_ENDED,
    AuditEvent.Type.CONSENT_GRANTED,
    AuditEvent.Type.CONSENT_REVOKED,
    AuditEvent.Type.TOKEN_REVOKED,
    AuditEvent.Type.USER_CHANGED,
    AuditEvent.Type.USER_ACTIVATED,
    AuditEvent.Type.USER_DEACTIVATED,
]


def security_activity(*, user: User) -> QuerySet[AuditEvent]:
    """The user's own security events, newest first."""
    return (
        AuditEvent.objects.filter(subject=user, type__in=ACTIVITY_TYPES)
        .select_related("client")
        .order_by("-created_at", "-id")
    )


_FAILURE_REASONS = {
    "bad_password": _("wrong password"),
    "bad_second_factor": _("wrong two-step verification code"),
    "locked": _("the account was locked"),
    "inactive": _("the account is deactivated"),
    "password_reset_required": _("a new password was required"),
}
_FACTOR_NAMES = {
    "totp": _("authenticator app"),
    "webauthn": _("security key or passkey"),
    "recovery_codes": _("recovery codes"),
}
_FACTOR_CHANGES = {
    "added": _("%(factor)s added"),
    "removed": _("%(factor)s removed"),
    "reset": _("new %(factor)s made"),
}


@dataclass(frozen=True)
class ActivityEntry:
    event: AuditEvent
    title: str
    detail: str
    device: str
    by_someone_else: str


def describe_event(event: AuditEvent) -> ActivityEntry:
    """One audit row in the user's words: what happened, details, from which device."""
    extra = event.extra or {}
    detail = ""
    if event.type == AuditEvent.Type.LOGIN_FAILED:
        detail = str(_FAILURE_REASONS.get(str(extra.get("reason")), ""))
    elif event.type == AuditEvent.Type.MFA_CHANGED:
        if extra.get("change") == "reset_by_admin":
            detail = str(_("all two-step verification methods removed"))
        else:
            factor = _FACTOR_NAMES.get(str(extra.get("authenticator_type")), _("method"))
            template = _FACTOR_CHANGES.get(str(extra.get("change")), "%(factor)s")
            detail = str(template) % {"factor": factor}
    elif event.type in {AuditEvent.Type.PASSWORD_CHANGED, AuditEvent.Type.PASSWORD_RESET}:
        if extra.get("signed_out_others") or extra.get("signed_out_everywhere"):
            detail = str(_("signed out everywhere else"))
    elif event.type == AuditEvent.Type.SESSIONS_ENDED:
        count = int(extra.get("sessions_ended") or 0)
        detail = ngettext("%(count)d session", "%(count)d sessions", count) % {"count": count}
    elif event.client_id or event.client_repr:
        detail = event.client.name if event.client is not None else event.client_repr
    someone_else = ""
    if event.actor_repr and event.actor_id != event.subject_id:
        someone_else = event.actor_repr
    return ActivityEntry(
        event=event,
        title=str(event.get_type_display()),
        detail=detail,
        device=describe_user_agent(event.user_agent) if event.user_agent else "",
        by_someone_else=someone_else,
    )
