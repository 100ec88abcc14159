"""State changes on users: sign-in bookkeeping, the per-account lock, admin actions, sessions.

Every function is keyword-only, writes in one transaction and records an `AuditEvent`.
Side effects outside the database (email) run on commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from importlib import import_module
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.forms import ResetPasswordForm
from allauth.core.context import request_context
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.backends.base import SessionBase
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.audit import build_event, publish_event, record_event
from accounts.emails import record_trusted_email
from accounts.groups import (
    Membership,
    ancestor_ids,
    descendant_ids,
    effective_member_ids,
    parent_map,
    with_ancestors,
    would_nest_in_itself,
)
from accounts.models import AuditEvent, GroupClosure, GroupProfile, User
from accounts.permissions import (
    ensure_may_administer,
    ensure_may_change_members,
    ensure_may_manage_groups,
    ensure_may_set_privileges,
    ensure_not_last_superuser,
)
from accounts.sessions import SID_KEY, get_sid
from oauth_clients.oidc.signout import (
    RevokedCounts,
    end_lost_access,
    queue_session_logout,
    queue_user_logout,
    revoke_consent,
    revoke_tokens,
)

DB_SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Failures that count towards the per-account lock: a wrong password, and a wrong second-factor
# code after the right password (so guessing codes is limited like guessing passwords).
COUNTED_FAILURES = frozenset({"bad_password", "bad_second_factor"})


# --- Email addresses ------------------------------------------------------------------------


# --- Sign-in bookkeeping and the per-account lock --------------------------------------------


def record_login(*, request: HttpRequest | None, user: User) -> None:
    """A completed sign-in: stamp `last_login`, clear the failure count and audit it.

    `last_login` is what Django's `update_last_login` receiver writes (`save(update_fields=…)`,
    replaced in accounts.apps.UserSessionsConfig): here it is written just before the audit
    row, one UPDATE of one column instead of a `save()` of the user.
    """
    if user.failed_login_count or user.locked_until is not None:
        User.objects.filter(pk=user.pk).update(
            failed_login_count=0, locked_until=None, last_failed_login_at=None
        )
        user.failed_login_count, user.locked_until = 0, None
    user.last_login = timezone.now()
    event = build_event(
        type=AuditEvent.Type.LOGIN_SUCCEEDED, request=request, actor=user, subject=user
    )
    User.objects.filter(pk=user.pk).update(last_login=user.last_login)
    event.save(force_insert=True)
    publish_event(event)


@transaction.atomic
def record_logout(*, request: HttpRequest | None, user: User | None) -> None:
    """A sign-out here: the apps this session signed in to are told (back-channel logout), the
    tokens it obtained stop working and the session leaves the user's list of sessions."""
    session = getattr(request, "session", None)
    sid = get_sid(request) if request is not None and session is not None else ""
    revoked = revoke_session_tokens(user=user, sid=sid) if user is not None else {}
    if session is not None and session.session_key:
        UserSession.objects.filter(session_key=session.session_key).delete()
    record_event(type=AuditEvent.Type.LOGOUT, request=request, actor=user, subject=user, **revoked)


def record_failed_login(
    *, request: HttpRequest | None, users: list[User], reason: str
) -> list[User]:
    """A refused sign-in. Wrong passwords and codes count towards the per-account lock.

    After IDP_LOCKOUT_THRESHOLD wrong passwords in a row the account is locked for
    IDP_LOCKOUT_SECONDS; attempts while locked are recorded but do not extend the lock (so the
    owner knows when they can try again). Returns the accounts this attempt locked.
    `reason`: "bad_password", "bad_second_factor", "locked", "inactive",
    "password_reset_required", "unknown_account". Wrong second-factor codes count like wrong
    passwords (COUNTED_FAILURES). The typed login is never stored: people type passwords into it.
    """
    if not users:
        record_event(type=AuditEvent.Type.LOGIN_FAILED, request=request, reason=reason)
        return []
    locked_now: list[User] = []
    threshold = max(1, int(settings.IDP_LOCKOUT_THRESHOLD))
    for candidate in users:
        with transaction.atomic():
            user = User.objects.select_for_update().get(pk=candidate.pk)
            now = timezone.now()
            if reason in COUNTED_FAILURES and not user.is_locked(now=now):
                user.failed_login_count += 1
                user.last_failed_login_at = now
                if user.failed_login_count >= threshold:
                    user.locked_until = now + timedelta(seconds=settings.IDP_LOCKOUT_SECONDS)
                    user.failed_login_count = 0
                    locked_now.append(user)
                user.save(
                    update_fields=["failed_login_count", "last_failed_login_at", "locked_until"]
                )
            record_event(
                type=AuditEvent.Type.LOGIN_FAILED,
                request=request,
                subject=user,
                reason=reason,
            )
            if user in locked_now:
                record_event(
                    type=AuditEvent.Type.ACCOUNT_LOCKED,
                    request=request,
                    subject=user,
                    locked_until=user.locked_until.isoformat() if user.locked_until else None,
                    failures=threshold,
                )
    return locked_now


def _signed_in(request: HttpRequest | None) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


@transaction.atomic
def unlock_user(*, user: User, actor: Any, request: HttpRequest | None = None) -> None:
    ensure_may_administer(actor=actor, subject=user)
    User.objects.filter(pk=user.pk).update(
        locked_until=None, failed_login_count=0, last_failed_login_at=None
    )
    user.locked_until, user.failed_login_count, user.last_failed_login_at = None, 0, None
    record_event(type=AuditEvent.Type.ACCOUNT_UNLOCKED, request=request, actor=actor, subject=user)


# --- Passwords --------------------------------------------------------------------------------


def set_password(*, user: User, password: str) -> None:
    """The user chose a new password (change or reset): a forced reset is then satisfied."""
    user.set_password(password)
    user.password_reset_required = False
    user.save()


def record_password_changed(
    *, request: HttpRequest, user: User, sign_out_others: bool = True
) -> None:
    """A new password chosen while signed in (change, or set for an account that had none).

    This browser stays signed in. With `sign_out_others` every other session ends and the
    tokens each obtained are revoked; without it the other sessions stay signed in (Django
    would otherwise drop them at their next request, their password hash being stale).
    """
    keep = request.session.session_key if hasattr(request, "session") else None
    if sign_out_others:
        ended, revoked = _end_sessions(user=user, keep_session_key=keep)
        kept = 0
    else:
        ended, revoked = 0, {}
        kept = keep_sessions_signed_in(user=user, except_session_key=keep)
    record_event(
        type=AuditEvent.Type.PASSWORD_CHANGED,
        request=request,
        actor=user,
        subject=user,
        signed_out_others=sign_out_others,
        sessions_ended=ended,
        sessions_kept=kept,
        **revoked,
    )


def record_password_reset(
    *, request: HttpRequest | None, user: User, sign_out_everywhere: bool = True
) -> None:
    """A reset through the emailed link (nobody is signed in on this browser).

    With `sign_out_everywhere` (the default) every session ends and every app's tokens are
    revoked: a reset is often the answer to a stolen password. Without it, signed-in browsers
    and apps stay so.
    """
    if sign_out_everywhere:
        ended, revoked = _end_sessions(user=user)
        revoked = _add_counts(revoked, revoke_user_tokens(user=user))
        kept = 0
    else:
        ended, revoked = 0, {}
        kept = keep_sessions_signed_in(user=user)
    record_event(
        type=AuditEvent.Type.PASSWORD_RESET,
        request=request,
        actor=user,
        subject=user,
        signed_out_everywhere=sign_out_everywhere,
        sessions_ended=ended,
        sessions_kept=kept,
        **revoked,
    )


def record_password_reset_requested(*, request: HttpRequest | None, user: User) -> None:
    actor = request.user if _signed_in(request) else None  # type: ignore[union-attr]
    record_event(
        type=AuditEvent.Type.PASSWORD_RESET_REQUESTED, request=request, actor=actor, subject=user
    )


def send_password_reset_link(*, request: HttpRequest, user: User) -> bool:
    """Email the user allauth's single-use, expiring reset link (after the transaction commits).

    Returns False when the account has no address to send it to.
    """
    if not user.email or not user.is_active:
        return False

    def send() -> None:
        # allauth's own form: same token generator, link and email template as a self-service
        # reset. allauth builds the link from its request context (set by its middleware; set
        # here too so the callback also works outside a request cycle).
        with request_context(request):
            form = ResetPasswordForm(data={"email": user.email})
            if form.is_valid():
                form.users = [u for u in form.users if u.pk == user.pk]
                if form.users:  # never allauth's "unknown account" mail from here
                    form.save(request)

    transaction.on_commit(send)
    return True


@transaction.atomic
def force_password_reset(*, user: User, actor: Any, request: HttpRequest) -> bool:
    """An administrator requires a new password: sign-in is refused until the user resets.

    Ends the user's sessions, makes their OAuth tokens unusable and emails a reset link.
    Returns whether a link could be sent.
    """
    ensure_may_administer(actor=actor, subject=user)
    User.objects.filter(pk=user.pk).update(password_reset_required=True)
    user.password_reset_required = True
    # Thorough: the password (and so Django's session hash) has not changed yet.
    ended = end_user_sessions(user=user, thorough=True)
    revoked = revoke_user_tokens(user=user)
    sent = send_password_reset_link(request=request, user=user)
    record_event(
        type=AuditEvent.Type.PASSWORD_RESET_FORCED,
        request=request,
        actor=actor,
        subject=user,
        sessions_ended=ended,
        reset_link_sent=sent,
        **revoked,
    )
    return sent


# --- Sessions and tokens ----------------------------------------------------------------------


def _session_store(session_key: str | None = None) -> SessionBase:
    engine = import_module(settings.SESSION_ENGINE)
    return engine.SessionStore(session_key)  # type: ignore[no-any-return]


def session_sid(*, session_key: str) -> str:
    """The OIDC `sid` a stored browser session carries ("" when it is gone or has none).

    Read before the session is deleted: it names the tokens that session obtained
    (AccessToken/RefreshToken/IDToken/Grant `sid`).
    """
    return str(_session_store(session_key).load().get(SID_KEY, "") or "")


def record_user_session(*, request: HttpRequest, user: User) -> UserSession:
    """A sign-in through allauth: this browser session joins the user's list of sessions.

    The row holds what allauth's own receiver records (`UserSession.objects.create_from_request`:
    address, browser, session key, created and last seen now). Django's `login()` has just
    given the session a new key (`cycle_key()` or `flush()`), so no row holds it yet: one
    INSERT, not allauth's get-or-create.

    allauth also purged here every other session of the user that had ended (two session-store
    reads and a user lookup per session, at every sign-in). Only rows that may have ended by
    expiry are checked now: a session expires SESSION_COOKIE_AGE after its last save, and a
    signed-in request saves it at most ACTIVITY_INTERVAL_SECONDS after refreshing
    `last_seen_at` (accounts.middleware), so a row seen more recently than SESSION_COOKIE_AGE
    ago belongs to a session that has not expired. Sign-out deletes its own row
    (`record_logout`) and the sessions page still checks every row (`purge_and_list`).
    """
    if not request.session.session_key:
        request.session.save()
    max_length = UserSession._meta.get_field("user_agent").max_length
    session = UserSession.objects.create(
        session_key=request.session.session_key,
        user=user,
        ip=get_account_adapter().get_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:max_length],
    )
    cutoff = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    # A plain fetch: usually no row, at most a few. `.iterator()` took a server-side cursor on
    # PostgreSQL (DECLARE, FETCH, CLOSE: ~0.6 ms more CPU per sign-in).
    for stale in UserSession.objects.filter(user_id=user.pk, last_seen_at__lt=cutoff):
        stale.purge()  # deletes the row only if its session is gone (or signed out)
    return session


def _add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value
    return total


def _token_counts(counts: RevokedCounts) -> dict[str, int]:
    """Revocation counts as the audit rows name them."""
    return {
        "access_tokens_deleted": counts.access_tokens,
        "refresh_tokens_revoked": counts.refresh_tokens,
        "codes_deleted": counts.codes,
    }


def revoke_user_tokens(*, user: User) -> dict[str, int]:
    """Make every OAuth token of the user unusable at once (`oauth_clients.oidc.tokens`); the apps
    holding them are told first (OIDC Back-Channel Logout, `oauth_clients.oidc.backchannel`)."""
    queue_user_logout(user=user)
    return _token_counts(revoke_tokens(user=user))


def revoke_session_tokens(*, user: User, sid: str) -> dict[str, int]:
    """What one browser session (`sid`) obtained for any app stops working now; each app it
    signed in to is told first (OIDC Back-Channel Logout, `oauth_clients.oidc.backchannel`)."""
    if not sid:
        return {}
    queue_session_logout(sid=sid, user=user)
    return _token_counts(revoke_tokens(user=user, sid=sid))


def _end_session_key(*, user: User, session_key: str) -> dict[str, int]:
    """Delete one stored session after revoking the tokens it issued (found by its sid)."""
    revoked = revoke_session_tokens(user=user, sid=session_sid(session_key=session_key))
    _session_store().delete(session_key)
    UserSession.objects.filter(session_key=session_key).delete()
    return revoked


def _end_sessions(
    *, user: User, keep_session_key: str | None = None, thorough: bool = False
) -> tuple[int, dict[str, int]]:
    ended, revoked = 0, dict[str, int]()
    for session_key in UserSession.objects.filter(user=user).values_list("session_key", flat=True):
        if keep_session_key and session_key == keep_session_key:
            continue
        _add_counts(revoked, _end_session_key(user=user, session_key=session_key))
        ended += 1
    if thorough and settings.SESSION_ENGINE == DB_SESSION_ENGINE:
        user_id = str(user.pk)
        stale = [
            session.session_key
            for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
            if session.session_key != keep_session_key
            and str(session.get_decoded().get(SESSION_KEY, "")) == user_id
        ]
        for session_key in stale:
            _add_counts(revoked, _end_session_key(user=user, session_key=session_key))
        ended += len(stale)
    return ended, revoked


def end_user_sessions(
    *, user: User, keep_session_key: str | None = None, thorough: bool = False
) -> int:
    """End the user's browser sessions now (all but `keep_session_key`). Returns how many.

    Each session's tokens (by its sid) are revoked with it. allauth's usersessions tracks every
    signed-in session (any session engine). `thorough` also sweeps the database session table
    for sessions the tracker has not seen (signed in without a tracked request since): a scan,
    so only for rare administrator actions.
    """
    ended, _revoked = _end_sessions(user=user, keep_session_key=keep_session_key, thorough=thorough)
    return ended


@transaction.atomic
def end_sessions(
    *,
    user: User,
    session_keys: list[str],
    request: HttpRequest | None,
    actor: Any = None,
    reason: str,
) -> int:
    """End these browser sessions of `user` and revoke what each obtained (audited).

    The caller picked them (the sessions page, allauth's "sign out other sessions").
    """
    keys = set(
        UserSession.objects.filter(user=user, session_key__in=session_keys).values_list(
            "session_key", flat=True
        )
    )
    revoked: dict[str, int] = {}
    for session_key in sorted(keys):
        _add_counts(revoked, _end_session_key(user=user, session_key=session_key))
    if keys:
        record_event(
            type=AuditEvent.Type.SESSIONS_ENDED,
            request=request,
            actor=actor,
            subject=user,
            sessions_ended=len(keys),
            reason=reason,
            **revoked,
        )
    return len(keys)


@transaction.atomic
def end_session_at_apps_request(
    *, user: User, session_key: str, request: HttpRequest | None, client: Any, reason: str
) -> dict[str, int]:
    """A sign-out the person asked for at an app, reaching us without their browser (a SAML
    app's LogoutRequest over SOAP, `oauth_clients/saml/slo_soap.py`): the stored session ends
    as at a sign-out here, the apps it signed in to told (through the engine's door, before its
    tokens are revoked), the session deleted, audited as the person's sign-out through `client`.
    """
    revoked = _end_session_key(user=user, session_key=session_key)
    record_event(
        type=AuditEvent.Type.LOGOUT,
        request=request,
        actor=user,
        subject=user,
        client=client,
        reason=reason,
        **revoked,
    )
    return revoked


def keep_sessions_signed_in(*, user: User, except_session_key: str | None = None) -> int:
    """After a new password, keep the user's other tracked sessions signed in.

    Django signs a session out when the password hash it recorded no longer matches; the user
    chose not to sign out elsewhere, so each tracked session records the new hash.
    """
    kept = 0
    new_hash = user.get_session_auth_hash()
    for session_key in UserSession.objects.filter(user=user).values_list("session_key", flat=True):
        if session_key == except_session_key:
            continue
        store = _session_store(session_key)
        if str(store.get(SESSION_KEY, "")) != str(user.pk):
            continue  # gone or someone else's: never write a session back into existence
        store[HASH_SESSION_KEY] = new_hash
        store.save()
        kept += 1
    return kept


# --- Self-service: profile and connected apps ------------------------------------------------


@transaction.atomic
def update_profile(
    *, user: User, first_name: str, last_name: str, request: HttpRequest | None = None
) -> list[str]:
    """The user renames themselves (OIDC `name` claims follow). Returns the changed fields."""
    changed = [
        field
        for field, value in (("first_name", first_name), ("last_name", last_name))
        if getattr(user, field) != value
    ]
    if not changed:
        return []
    user.first_name, user.last_name = first_name, last_name
    user.save(update_fields=[*changed, "updated_at"])
    record_event(
        type=AuditEvent.Type.USER_CHANGED, request=request, actor=user, subject=user, fields=changed
    )
    return changed


@transaction.atomic
def remove_connected_app(*, user: User, client: Any, request: HttpRequest | None = None) -> bool:
    """ "Remove access": the app's consent is forgotten (the next sign-in asks again) and every
    token it holds for the user stops working now. Returns whether anything was removed."""
    consent_removed = revoke_consent(user=user, client=client, actor=user, request=request)
    counts = revoke_tokens(user=user, client=client)
    revoked = _token_counts(counts)
    if any(revoked.values()):
        record_event(
            type=AuditEvent.Type.TOKEN_REVOKED,
            request=request,
            actor=user,
            subject=user,
            client=client,
            reason="user_removed_access",
            **revoked,
        )
    return consent_removed or any(revoked.values())


# --- Administrator actions on users ----------------------------------------------------------


@transaction.atomic
def register_user(
    *,
    user: User,
    password: str | None,
    actor: Any,
    request: HttpRequest,
) -> User:
    """An administrator creates an account (`user` is built but unsaved).

    With a password the user can sign in at once; without one the account gets an unusable
    password and the user is emailed a reset link to choose their own.
    """
    if user.is_staff or user.is_superuser:
        ensure_may_set_privileges(actor=actor)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    record_trusted_email(user=user)
    sent = False if password else send_password_reset_link(request=request, user=user)
    record_event(
        type=AuditEvent.Type.USER_CREATED,
        request=request,
        actor=actor,
        subject=user,
        password_set=bool(password),
        reset_link_sent=sent,
        is_staff=user.is_staff,
        is_superuser=user.is_superuser,
    )
    return user


@transaction.atomic
def deactivate_user(*, user: User, actor: Any, request: HttpRequest | None = None) -> None:
    """The user can no longer sign in; their sessions end and their OAuth tokens die now."""
    ensure_may_administer(actor=actor, subject=user)
    ensure_not_last_superuser(user=user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    user.is_active = False
    ended = end_user_sessions(user=user, thorough=True)
    revoked = revoke_user_tokens(user=user)
    record_event(
        type=AuditEvent.Type.USER_DEACTIVATED,
        request=request,
        actor=actor,
        subject=user,
        sessions_ended=ended,
        **revoked,
    )


@transaction.atomic
def activate_user(*, user: User, actor: Any, request: HttpRequest | None = None) -> None:
    ensure_may_administer(actor=actor, subject=user)
    User.objects.filter(pk=user.pk).update(is_active=True)
    user.is_active = True
    record_event(type=AuditEvent.Type.USER_ACTIVATED, request=request, actor=actor, subject=user)


@transaction.atomic
def set_staff(
    *, user: User, is_staff: bool, actor: Any, request: HttpRequest | None = None
) -> None:
    """Grant or revoke access to the administration (audited)."""
    ensure_may_set_privileges(actor=actor)
    ensure_may_administer(actor=actor, subject=user)
    if user.is_staff == is_staff:
        return
    User.objects.filter(pk=user.pk).update(is_staff=is_staff)
    user.is_staff = is_staff
    record_event(
        type=AuditEvent.Type.STAFF_GRANTED if is_staff else AuditEvent.Type.STAFF_REVOKED,
        request=request,
        actor=actor,
        subject=user,
    )


@transaction.atomic
def set_superuser(
    *, user: User, is_superuser: bool, actor: Any, request: HttpRequest | None = None
) -> None:
    """Grant or revoke every permission (audited). A superuser is also staff."""
    ensure_may_set_privileges(actor=actor)
    ensure_may_administer(actor=actor, subject=user)
    if user.is_superuser == is_superuser:
        return
    if not is_superuser:
        ensure_not_last_superuser(user=user)
    User.objects.filter(pk=user.pk).update(is_superuser=is_superuser)
    user.is_superuser = is_superuser
    record_event(
        type=(
            AuditEvent.Type.SUPERUSER_GRANTED if is_superuser else AuditEvent.Type.SUPERUSER_REVOKED
        ),
        request=request,
        actor=actor,
        subject=user,
    )
    if is_superuser:
        set_staff(user=user, is_staff=True, actor=actor, request=request)


# Fields whose change has its own audit event (or is bookkeeping, not an admin decision).
_OWN_EVENT_FIELDS = {
    "is_active",
    "is_staff",
    "is_superuser",
    "password_reset_required",
    "password",
    "last_login",
    "updated_at",
}


@transaction.atomic
def save_admin_changes(
    *, user: User, changed_fields: list[str], actor: Any, request: HttpRequest
) -> None:
    """Save an administrator's edit of a user, routing each security change to its service.

    `user` carries the new values; the stored row still has the old ones.
    """
    before = User.objects.select_for_update().get(pk=user.pk)
    # Decided on the stored account: what it is now, not what the form says it becomes.
    ensure_may_administer(actor=actor, subject=before)
    new_active, new_staff, new_superuser = user.is_active, user.is_staff, user.is_superuser
    new_reset_required = user.password_reset_required
    # Security flags are applied by their services below, from the stored values.
    user.is_active, user.is_staff, user.is_superuser = (
        before.is_active,
        before.is_staff,
        before.is_superuser,
    )
    user.password_reset_required = before.password_reset_required
    user.save()
    if (before.email or "") != (user.email or ""):
        record_trusted_email(user=user, previous_email=before.email)
    other = sorted(set(changed_fields) - _OWN_EVENT_FIELDS)
    if other:
        record_event(
            type=AuditEvent.Type.USER_CHANGED,
            request=request,
            actor=actor,
            subject=user,
            fields=other,
        )
    if new_superuser != before.is_superuser:
        set_superuser(user=user, is_superuser=new_superuser, actor=actor, request=request)
    if new_staff != user.is_staff:
        set_staff(user=user, is_staff=new_staff, actor=actor, request=request)
    if new_active != before.is_active:
        if new_active:
            activate_user(user=user, actor=actor, request=request)
        else:
            deactivate_user(user=user, actor=actor, request=request)
    if new_reset_required != before.password_reset_required:
        if new_reset_required:
            force_password_reset(user=user, actor=actor, request=request)
        else:
            User.objects.filter(pk=user.pk).update(password_reset_required=False)
            user.password_reset_required = False
            record_event(
                type=AuditEvent.Type.USER_CHANGED,
                request=request,
                actor=actor,
                subject=user,
                fields=["password_reset_required"],
            )


def record_admin_refusal(
    *, users: list[User], actor: Any, request: HttpRequest | None, action: str
) -> None:
    """An administrator tried to act on accounts above their level (accounts/permissions.py):
    nothing changed; one audit row per account, so the attempt shows on each one's history."""
    for user in users:
        record_event(
            type=AuditEvent.Type.ADMIN_REFUSED,
            request=request,
            actor=actor,
            subject=user,
            action=action,
        )


@transaction.atomic
def delete_user(*, user: User, actor: Any, request: HttpRequest | None = None) -> None:
    """Delete an account; its sessions end first (tokens go with the row)."""
    ensure_may_administer(actor=actor, subject=user)
    ensure_not_last_superuser(user=user)
    end_user_sessions(user=user, thorough=True)
    record_event(type=AuditEvent.Type.USER_DELETED, request=request, actor=actor, subject=user)
    user.delete()


def record_admin_password_set(*, user: User, actor: Any, request: HttpRequest) -> None:
    """An administrator set the user's password in the admin (the user's sessions end)."""
    ensure_may_administer(actor=actor, subject=user)
    ended = end_user_sessions(
        user=user,
        keep_session_key=request.session.session_key if user.pk == actor.pk else None,
    )
    record_event(
        type=AuditEvent.Type.PASSWORD_CHANGED,
        request=request,
        actor=actor,
        subject=user,
        by_admin=True,
        sessions_ended=ended,
    )


@transaction.atomic
def reset_user_factors(*, user: User, actor: Any, request: HttpRequest | None = None) -> int:
    """An administrator removes every second factor of the user (lost phone or key).

    The user signs in with the password alone until they set one up again (staff are asked
    to at once). Returns how many authenticators were removed.
    """
    ensure_may_administer(actor=actor, subject=user)
    authenticators = Authenticator.objects.filter(user=user)
    types = sorted(set(authenticators.values_list("type", flat=True)))
    _total, per_model = authenticators.delete()
    removed = int(per_model.get(Authenticator._meta.label, 0))
    record_event(
        type=AuditEvent.Type.MFA_CHANGED,
        request=request,
        actor=actor,
        subject=user,
        change="reset_by_admin",
        authenticator_types=types,
        removed=removed,
    )
    return removed


@transaction.atomic
def sign_out_everywhere(*, user: User, actor: Any, request: HttpRequest | None = None) -> int:
    """An administrator ends every browser session of the user (and what each obtained)."""
    ensure_may_administer(actor=actor, subject=user)
    keep = None
    if request is not None and getattr(actor, "pk", None) == user.pk:
        keep = request.session.session_key  # never the administrator's own current session
    ended, revoked = _end_sessions(user=user, keep_session_key=keep, thorough=True)
    record_event(
        type=AuditEvent.Type.SESSIONS_ENDED,
        request=request,
        actor=actor,
        subject=user,
        sessions_ended=ended,
        reason="admin_signed_out",
        **revoked,
    )
    return ended


@transaction.atomic
def revoke_all_user_tokens(
    *, user: User, actor: Any, request: HttpRequest | None = None
) -> dict[str, int]:
    """An administrator signs the user out of every app (browser sessions stay)."""
    ensure_may_administer(actor=actor, subject=user)
    revoked = revoke_user_tokens(user=user)
    record_event(
        type=AuditEvent.Type.TOKEN_REVOKED,
        request=request,
        actor=actor,
        subject=user,
        reason="admin_revoked_user",
        **revoked,
    )
    return revoked


# --- Groups -----------------------------------------------------------------------------------
#
# Every change to a group or to who is in it goes through these functions (the admin, the
# `groups` command, the user admin's group field): each is checked against the group rule
# (accounts/permissions.py) and audited. Membership ends in one place, `_end_memberships`
# (removal, deletion of the group); what a membership gives is read by `accounts.groups`.
# A membership that ends or stops counting (a group moved out from under another) may take
# away an app assigned to the group: `signout.end_lost_access` ends that app's tokens and
# sessions for whoever lost it, after commit.

# Rows per INSERT or DELETE when thousands of people join or leave a group at once.
_MEMBERSHIP_BATCH = 500
# Why a membership ended, as the audit rows of the app access it took away say it.
_LOST_ACCESS_REASONS = {"removed": "removed_from_group", "group_deleted": "group_deleted"}


def _group_fields(group: Group) -> dict[str, Any]:
    return {"group": group.name, "group_id": group.pk}


def clean_group_name(*, name: str, group: Group | None = None) -> str:
    """The name as stored (trimmed), or ValidationError: empty, too long, or a name another
    group has in any letter case (the `groups` claim carries names, so "Sales" and "sales"
    would be one group to an app)."""
    name = name.strip()
    if not name:
        raise ValidationError(_("Enter a group name."), code="required")
    max_length = Group._meta.get_field("name").max_length or 150
    if len(name) > max_length:
        raise ValidationError(
            _("A group name has at most %(max)d characters.") % {"max": max_length},
            code="max_length",
        )
    taken = Group.objects.filter(name__iexact=name)
    if group is not None and group.pk is not None:
        taken = taken.exclude(pk=group.pk)
    if taken.exists():
        raise ValidationError(
            _("A group named %(name)s already exists.") % {"name": name}, code="unique"
        )
    return name


def clean_group_description(*, description: str) -> str:
    """The note as stored (trimmed), or ValidationError when it is longer than its column (the
    admin's form says so itself; the admin API and other callers come through here)."""
    description = description.strip()
    max_length = GroupProfile._meta.get_field("description").max_length
    if max_length is not None and len(description) > max_length:
        raise ValidationError(
            {
                "description": _("A group description has at most %(max)d characters.")
                % {"max": max_length}
            },
            code="max_length",
        )
    return description


def _rebuild_closure(*, group_ids: Iterable[int] | None) -> None:
    """The closure rows (accounts.models.GroupClosure) of `group_ids` and every group below
    them, rebuilt from `GroupProfile.parent`; every group's when `group_ids` is None. In the
    caller's transaction: readers see the old rows or the new ones, never a subtree half moved.
    Nesting changes are rare and small (a moved subtree times its depth), so the rows are
    rewritten rather than patched.

    Two changes under one another (a group moved while its parent moves, a group created in a
    group being moved) would each rebuild from a nesting the other is changing: the subtree
    and the parents of its top groups are locked, in id order, and the nesting read again
    under the locks, so the second waits for the first and builds on its result."""
    if group_ids is None:
        parents = parent_map()
        subtree = set(Group.objects.values_list("pk", flat=True))
        GroupClosure.objects.all().delete()
    else:
        roots = set(group_ids)
        parents = parent_map()
        locked = set(roots) | {parents[pk] for pk in roots if pk in parents}
        for root in roots:
            locked |= descendant_ids(root, parents=parents)
        list(
            Group.objects.select_for_update()
            .filter(pk__in=locked)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        parents = parent_map()
        subtree = set()
        for root in roots:
            subtree |= {root, *descendant_ids(root, parents=parents)}
        GroupClosure.objects.filter(descendant_id__in=subtree).delete()
    GroupClosure.objects.bulk_create(
        [
            GroupClosure(ancestor_id=ancestor, descendant_id=group_id, depth=depth)
            for group_id in sorted(subtree)
            for depth, ancestor in enumerate([group_id, *ancestor_ids(group_id, parents=parents)])
        ],
        batch_size=_MEMBERSHIP_BATCH,
    )


@transaction.atomic
def rebuild_group_closure(*, groups: Iterable[Group] | None = None) -> None:
    """The closure rows of `groups` and their subgroups (all groups when None) made to match
    `GroupProfile.parent` again: for nesting written without the services (a seed, a test
    fixture, a data fix). Changes no one's membership as the nesting says it, so not audited."""
    _rebuild_closure(group_ids=None if groups is None else [group.pk for group in groups])


def check_group_parent(*, group: Group, parent: Group | None) -> None:
    """ValidationError when `parent` is the group itself or one of its subgroups: a group
    cannot be its own ancestor."""
    if parent is None or group.pk is None:
        return
    if would_nest_in_itself(group_id=group.pk, parent_id=parent.pk, parents=parent_map()):
        raise ValidationError(
            _(
                "%(group)s cannot be put inside %(parent)s: %(parent)s is %(group)s itself "
                "or one of its subgroups."
            )
            % {"group": group.name, "parent": parent.name},
            code="cycle",
        )


@transaction.atomic
def create_group(
    *,
    name: str,
    parent: Group | None = None,
    description: str = "",
    actor: Any,
    request: HttpRequest | None = None,
) -> Group:
    """A new group, top-level or inside `parent` (its members become members of `parent`)."""
    ensure_may_manage_groups(actor=actor, action="add")
    description = clean_group_description(description=description)
    group = Group.objects.create(name=clean_group_name(name=name))
    GroupProfile.objects.create(group=group, parent=parent, description=description)
    _rebuild_closure(group_ids=[group.pk])  # itself and the groups above it
    record_event(
        type=AuditEvent.Type.GROUP_CREATED,
        request=request,
        actor=actor,
        parent=parent.name if parent is not None else None,
        **_group_fields(group),
    )
    return group


@transaction.atomic
def rename_group(
    *, group: Group, name: str, actor: Any, request: HttpRequest | None = None
) -> bool:
    """Rename the group (apps see the new name in the `groups` claim). Returns whether the
    name changed."""
    ensure_may_manage_groups(actor=actor)
    name = clean_group_name(name=name, group=group)
    previous = Group.objects.select_for_update().values_list("name", flat=True).get(pk=group.pk)
    if previous == name:
        return False
    Group.objects.filter(pk=group.pk).update(name=name)
    group.name = name
    record_event(
        type=AuditEvent.Type.GROUP_CHANGED,
        request=request,
        actor=actor,
        fields=["name"],
        previous_name=previous,
        **_group_fields(group),
    )
    return True


@transaction.atomic
def set_group_description(
    *, group: Group, description: str, actor: Any, request: HttpRequest | None = None
) -> bool:
    """Change the note administrators see on the group. Returns whether it changed."""
    ensure_may_manage_groups(actor=actor)
    description = clean_group_description(description=description)
    profile, _created = GroupProfile.objects.select_for_update().get_or_create(group=group)
    if profile.description == description:
        return False
    profile.description = description
    profile.save(update_fields=["description"])
    record_event(
        type=AuditEvent.Type.GROUP_CHANGED,
        request=request,
        actor=actor,
        fields=["description"],
        **_group_fields(group),
    )
    return True


@transaction.atomic
def set_group_parent(
    *, group: Group, parent: Group | None, actor: Any, request: HttpRequest | None = None
) -> bool:
    """Put the group inside `parent` (None: top-level). Its members (and its subgroups')
    become members of `parent` and its ancestors, and stop being members of the old ones.
    ValidationError when the group would become its own ancestor. Returns whether it moved.
    """
    ensure_may_manage_groups(actor=actor)
    if parent is not None:
        # Two moves at once could close a loop that neither sees (A into B while B goes into
        # A). Each locks the group, the new parent and the parent's ancestors, in id order:
        # two moves that could close a loop share at least two of those rows, so the second
        # waits for the first and then sees its result.
        ancestors = ancestor_ids(parent.pk, parents=parent_map())
        list(
            Group.objects.select_for_update()
            .filter(pk__in={group.pk, parent.pk, *ancestors})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        check_group_parent(group=group, parent=parent)
    profile, _created = GroupProfile.objects.select_for_update().get_or_create(group=group)
    previous = Group.objects.filter(pk=profile.parent_id).first() if profile.parent_id else None
    if profile.parent_id == (parent.pk if parent is not None else None):
        return False
    parents = parent_map()
    left = set(ancestor_ids(group.pk, parents=parents))
    if parent is not None:
        left -= with_ancestors([parent.pk], parents=parents)
    profile.parent = parent
    profile.save(update_fields=["parent"])
    _rebuild_closure(group_ids=[group.pk])  # the group's and its subgroups', in this transaction
    if left:
        # The group's members (its subgroups' too) are no longer members of the groups it left.
        end_lost_access(
            user_ids=effective_member_ids(group=group),
            group_ids=left,
            actor=actor,
            reason="group_moved",
            request=request,
        )
    record_event(
        type=AuditEvent.Type.GROUP_PARENT_CHANGED,
        request=request,
        actor=actor,
        parent=parent.name if parent is not None else None,
        previous_parent=previous.name if previous is not None else None,
        **_group_fields(group),
    )
    return True


def _record_membership_events(
    *,
    type: str,
    group: Group,
    users: list[User],
    actor: Any,
    request: HttpRequest | None,
    **extra: Any,
) -> None:
    """One audit row per person (it shows on their history), written in batches."""
    events = [
        build_event(
            type=type, request=request, actor=actor, subject=user, **_group_fields(group), **extra
        )
        for user in users
    ]
    AuditEvent.objects.bulk_create(events, batch_size=_MEMBERSHIP_BATCH)
    for event in events:
        publish_event(event)


def _unique_users(users: Iterable[User]) -> list[User]:
    return list({user.pk: user for user in users}.values())


@transaction.atomic
def add_members(
    *, group: Group, users: Iterable[User], actor: Any, request: HttpRequest | None = None
) -> list[User]:
    """Add people to the group (and so to its ancestors). Returns those who were not members
    yet; each of them gets an audit row."""
    users = _unique_users(users)
    ensure_may_change_members(actor=actor, group=group, users=users)
    # One membership change of a group at a time: the check below then stays true.
    Group.objects.select_for_update().filter(pk=group.pk).values_list("pk").first()
    members = set(Membership.objects.filter(group_id=group.pk).values_list("user_id", flat=True))
    added = [user for user in users if user.pk not in members]
    Membership.objects.bulk_create(
        [Membership(user_id=user.pk, group_id=group.pk) for user in added],
        batch_size=_MEMBERSHIP_BATCH,
    )
    _record_membership_events(
        type=AuditEvent.Type.GROUP_MEMBER_ADDED,
        group=group,
        users=added,
        actor=actor,
        request=request,
    )
    return added


def _end_memberships(
    *, group: Group, users: list[User], actor: Any, request: HttpRequest | None, reason: str
) -> list[User]:
    """The one place a membership ends (removal, the group deleted): the rows go, each
    person's removal is audited, and the apps assigned to the group or a group above it are
    ended for those who may no longer use them (after commit). Returns those who were members.
    """
    Group.objects.select_for_update().filter(pk=group.pk).values_list("pk").first()
    members = set(Membership.objects.filter(group_id=group.pk).values_list("user_id", flat=True))
    removed = [user for user in users if user.pk in members]
    ids = [user.pk for user in removed]
    for start in range(0, len(ids), _MEMBERSHIP_BATCH):
        Membership.objects.filter(
            group_id=group.pk, user_id__in=ids[start : start + _MEMBERSHIP_BATCH]
        ).delete()
    _record_membership_events(
        type=AuditEvent.Type.GROUP_MEMBER_REMOVED,
        group=group,
        users=removed,
        actor=actor,
        request=request,
        reason=reason,
    )
    if ids:
        # Read before a deletion of the group cascades its assignments away.
        end_lost_access(
            user_ids=ids,
            group_ids=with_ancestors([group.pk], parents=parent_map()),
            actor=actor,
            reason=_LOST_ACCESS_REASONS.get(reason, reason),
            request=request,
        )
    return removed


@transaction.atomic
def remove_members(
    *, group: Group, users: Iterable[User], actor: Any, request: HttpRequest | None = None
) -> list[User]:
    """Take people out of the group (and so out of its ancestors, unless they are members
    there some other way). Returns those who were members; each of them gets an audit row."""
    users = _unique_users(users)
    ensure_may_change_members(actor=actor, group=group, users=users)
    return _end_memberships(
        group=group, users=users, actor=actor, request=request, reason="removed"
    )


@transaction.atomic
def set_user_groups(
    *, user: User, groups: Iterable[Group], actor: Any, request: HttpRequest | None = None
) -> None:
    """The user's direct groups become exactly `groups` (the user admin's group field), each
    addition and removal through `add_members` / `remove_members`."""
    wanted = {group.pk: group for group in groups}
    current = {group.pk: group for group in Group.objects.filter(user=user)}
    for pk in sorted(current.keys() - wanted.keys()):
        remove_members(group=current[pk], users=[user], actor=actor, request=request)
    for pk in sorted(wanted.keys() - current.keys()):
        add_members(group=wanted[pk], users=[user], actor=actor, request=request)


@transaction.atomic
def set_group_permissions(
    *,
    group: Group,
    permissions: Iterable[Permission],
    actor: Any,
    request: HttpRequest | None = None,
) -> bool:
    """The administration permissions the group's members get (superusers only: membership
    of the group hands them out). Returns whether they changed."""
    ensure_may_manage_groups(actor=actor)
    ensure_may_set_privileges(actor=actor)
    wanted = {permission.pk: permission for permission in permissions}
    current = {permission.pk: permission for permission in group.permissions.all()}
    if wanted.keys() == current.keys():
        return False
    group.permissions.set(list(wanted.values()))

    def names(found: dict[int, Permission], keys: set[int]) -> list[str]:
        return sorted(f"{found[pk].content_type.app_label}.{found[pk].codename}" for pk in keys)

    record_event(
        type=AuditEvent.Type.GROUP_CHANGED,
        request=request,
        actor=actor,
        fields=["permissions"],
        permissions_added=names(wanted, wanted.keys() - current.keys()),
        permissions_removed=names(current, current.keys() - wanted.keys()),
        **_group_fields(group),
    )
    return True


@transaction.atomic
def delete_group(*, group: Group, actor: Any, request: HttpRequest | None = None) -> int:
    """Delete a group that contains no other group; its members leave it first (each audited).
    ValidationError while it has subgroups: move or delete them first, so nobody's membership
    of the groups above changes by surprise. Returns how many members it had."""
    ensure_may_manage_groups(actor=actor, action="delete")
    children = sorted(Group.objects.filter(profile__parent=group).values_list("name", flat=True))
    if children:
        raise ValidationError(
            _("%(group)s contains other groups (%(children)s): move or delete them first.")
            % {"group": group.name, "children": ", ".join(children)},
            code="has_subgroups",
        )
    members = list(User.objects.filter(groups=group))
    ensure_may_change_members(actor=actor, group=group, users=members)
    removed = _end_memberships(
        group=group, users=members, actor=actor, request=request, reason="group_deleted"
    )
    record_event(
        type=AuditEvent.Type.GROUP_DELETED,
        request=request,
        actor=actor,
        members_removed=len(removed),
        **_group_fields(group),
    )
    group.delete()  # its closure rows cascade (it has no subgroups)
    return len(removed)
