"""The engine's one door for the people side and the registry: what a session, an account or an
app's access ending means for the apps. `accounts` (its services and its allauth adapter) and
the registry's services import the engine through this module only (tests/test_layers.py
holds them to that).

- `queue_session_logout` / `queue_user_logout`: the back-channel deliveries to every app the
  session (or the user) got tokens for (oauth_clients/oidc/backchannel.py); for one session,
  also a SAML LogoutRequest over SOAP (or a row saying it could not be told) to each SAML app
  it signed in to that was not told through the browser (oauth_clients/saml/slo_delivery.py);
- `revoke_tokens` and what it counts: the one revocation path (oauth_clients/oidc/tokens.py);
- `revoke_consent`: an app's remembered consent, when its access is removed;
- `logged_out_url`: the signed-out page that frames the apps' front-channel logout URIs;
- `end_app_access` / `end_lost_access`: people who may no longer use an app (an unassignment, a
  switch to `assigned`, a group membership ended, a group deleted or moved) lose that app at
  once: its tokens for them are revoked and it is told through back-channel logout, per
  session. Their IdP session and their other apps stay.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients import access
from oauth_clients.models import (
    AccessToken,
    Assignment,
    BackchannelDelivery,
    Client,
    Grant,
    RefreshToken,
)
from oauth_clients.oidc import backchannel
from oauth_clients.oidc.backchannel import (
    REASON_SESSION_ENDED,
    enqueue_delivery,
    queue_user_logout,
)
from oauth_clients.oidc.consent import revoke_consent
from oauth_clients.oidc.frontchannel import logged_out_url
from oauth_clients.oidc.tokens import RevokedCounts, revoke_tokens
from oauth_clients.saml import slo_delivery

__all__ = [
    "RevokedCounts",
    "end_app_access",
    "end_lost_access",
    "logged_out_url",
    "queue_session_logout",
    "queue_user_logout",
    "revoke_consent",
    "revoke_tokens",
]

# Above this many token holders of one app to check, who may use it is read once for the whole
# app (`access.users_with_access`) instead of asked per person (`access.may_use`, one or two
# queries each).
PER_USER_CHECK_LIMIT = 50


def queue_session_logout(*, sid: str, user: Any = None, reason: str = REASON_SESSION_ENDED) -> int:
    """Session `sid` ends: every OIDC app it signed in to gets its back-channel logout, every
    SAML app of it not told through the browser its LogoutRequest over SOAP or a row saying it
    could not be told. Call it before the session's tokens are revoked and the session is
    deleted. Returns how many deliveries were queued."""
    queued = backchannel.queue_session_logout(sid=sid, user=user, reason=reason)
    return queued + slo_delivery.queue_session_logout(sid=sid, user=user, reason=reason)


def end_app_access(
    *,
    client: Client,
    user_ids: Iterable[int],
    actor: Any,
    reason: str,
    request: HttpRequest | None = None,
) -> None:
    """These users may no longer use `client` (the registry's `users_losing_access`): on
    commit, those of them who still may not use it lose its tokens and the app is told.

    Decided on commit, against the state the whole transaction leaves (an import that takes an
    assignment away and gives another in one transaction takes nobody's access away).
    """
    users = frozenset(user_ids)
    if users:
        _end_on_commit(
            client_ids=frozenset({client.pk}),
            user_ids=users,
            actor=actor,
            reason=reason,
            request=request,
        )


def end_lost_access(
    *,
    user_ids: Iterable[int],
    group_ids: Iterable[int],
    actor: Any,
    reason: str,
    request: HttpRequest | None = None,
) -> None:
    """What groups `group_ids` gave these users may be gone (they left one of the groups, the
    group was deleted, or it moved out from under the others): on commit, each of them who
    holds tokens of an app assigned to one of those groups and may no longer use it loses the
    app's tokens, and the app is told.

    The apps are read now, in one query: a group deletion is about to take its assignments
    with it. Nothing more happens when no app is assigned to those groups.
    """
    users = frozenset(user_ids)
    groups = frozenset(group_ids)
    if not users or not groups:
        return
    client_ids = frozenset(
        Assignment.objects.filter(group_id__in=groups)
        .values_list("client_id", flat=True)
        .distinct()
    )
    if client_ids:
        _end_on_commit(
            client_ids=client_ids, user_ids=users, actor=actor, reason=reason, request=request
        )


def _end_on_commit(
    *,
    client_ids: frozenset[int],
    user_ids: frozenset[int],
    actor: Any,
    reason: str,
    request: HttpRequest | None,
) -> None:
    transaction.on_commit(
        partial(
            _end_lost_app_access,
            client_ids=client_ids,
            user_ids=user_ids,
            actor=actor,
            reason=reason,
            request=request,
        ),
        robust=True,  # a failure is logged; the grants re-check access on their next use
    )


def _token_holders(*, client_ids: frozenset[int], user_ids: frozenset[int]) -> dict[int, set[int]]:
    """Which of the users hold something of which of the apps (one query): an unpurged access
    token (an app's session can outlive its access token; the same rows tell the apps when an
    account is deactivated), a live refresh token, an unexchanged code."""
    rows = Q(application_id__in=client_ids, user_id__in=user_ids)
    pairs = (
        AccessToken.objects.filter(rows)
        .values_list("application_id", "user_id")
        .union(
            RefreshToken.objects.filter(rows, revoked__isnull=True).values_list(
                "application_id", "user_id"
            ),
            Grant.objects.filter(rows, consumed_at__isnull=True).values_list(
                "application_id", "user_id"
            ),
        )
    )
    holders: dict[int, set[int]] = defaultdict(set)
    for client_pk, user_pk in pairs:
        holders[client_pk].add(user_pk)
    return holders


def _without_access(*, client: Client, users: list[Any]) -> list[Any]:
    """Those of `users` who may not use `client` (the rules: oauth_clients.access)."""
    if len(users) <= PER_USER_CHECK_LIMIT:
        return [user for user in users if not access.may_use(user=user, client=client)]
    allowed = access.users_with_access(client=client)
    return [
        user for user in users if not (user.is_active and (allowed is None or user.pk in allowed))
    ]


def _end_lost_app_access(
    *,
    client_ids: frozenset[int],
    user_ids: frozenset[int],
    actor: Any,
    reason: str,
    request: HttpRequest | None,
) -> None:
    """After commit: end the app for each (user, app) pair where the user holds the app's
    tokens and may no longer use it. Apps open to everyone lose nobody; a disabled app's
    tokens were revoked when it was disabled."""
    with transaction.atomic():
        holders = _token_holders(client_ids=client_ids, user_ids=user_ids)
        if not holders:
            return
        clients = (
            Client.objects.filter(pk__in=holders.keys(), is_active=True)
            .exclude(access_policy=Client.AccessPolicy.OPEN)
            .order_by("pk")
        )
        people = {
            user.pk: user
            for user in get_user_model().objects.filter(pk__in=set().union(*holders.values()))
        }
        for client in clients:
            users = [people[pk] for pk in sorted(holders[client.pk]) if pk in people]
            for user in _without_access(client=client, users=users):
                _end_for_user(client=client, user=user, actor=actor, reason=reason, request=request)


def _end_for_user(
    *, client: Client, user: Any, actor: Any, reason: str, request: HttpRequest | None
) -> None:
    """The app is told about each session the user signed in to it with, then its tokens for
    the user die (the one revocation path); one audit row."""
    told = _queue_app_logout(client=client, user=user, reason=reason)
    counts = revoke_tokens(user=user, client=client)
    record_event(
        type=AuditEvent.Type.TOKEN_REVOKED,
        request=request,
        actor=actor,
        subject=user,
        client=client,
        reason=reason,
        access_tokens_deleted=counts.access_tokens,
        refresh_tokens_revoked=counts.refresh_tokens,
        codes_deleted=counts.codes,
        backchannel_logouts_queued=told,
    )


def _queue_app_logout(*, client: Client, user: Any, reason: str) -> int:
    """One back-channel delivery (sub and sid) per session in which the user got this app's
    tokens or a code (OIDC Back-Channel Logout 1.0 §2.3, as `backchannel.queue_user_logout`
    finds them, for one app); read before the tokens are revoked. Apps without a back-channel
    URI get nothing.

    A session the app was already told about once (access taken away, given back and taken
    again within one IdP session) cannot be told by its sid twice (one delivery per client
    and session); the app then gets one logout token naming only the user (§2.4: every
    session of that user at the app), unless it needs a sid (§2.2).
    """
    if not client.backchannel_logout_uri:
        return 0
    sids: set[str] = set()
    for queryset in (
        AccessToken.objects.filter(user=user, application=client),
        RefreshToken.objects.filter(user=user, application=client, revoked__isnull=True),
        Grant.objects.filter(user=user, application=client, consumed_at__isnull=True),
    ):
        sids.update(queryset.values_list("sid", flat=True).distinct())
    sub = str(user.pk)
    queued = 0
    by_subject_only = False
    for sid in sorted(sids):
        if sid and _queue_delivery(client=client, sub=sub, sid=sid, reason=reason):
            queued += 1
        else:
            by_subject_only = True
    if (
        by_subject_only
        and not client.backchannel_logout_session_required
        and _queue_delivery(client=client, sub=sub, sid="", reason=reason)
    ):
        queued += 1
    return queued


def _queue_delivery(*, client: Client, sub: str, sid: str, reason: str) -> bool:
    """One delivery row, handed to the background worker after commit; False when the app was
    already told about this session."""
    try:
        with transaction.atomic():
            delivery = BackchannelDelivery.objects.create(
                client=client, sub=sub, sid=sid, reason=reason
            )
    except IntegrityError:
        return False
    transaction.on_commit(partial(enqueue_delivery, delivery_id=delivery.pk), robust=True)
    return True
