"""OpenID Connect Back-Channel Logout 1.0: tell every app a session signed in to that it ended.

When an IdP session ends (RP-initiated logout, logout here, a session ended from the security
centre or by an administrator, a password reset, a deactivation) the session services call
`queue_session_logout` (one session, by its `sid`) or `queue_user_logout` (every remaining token
of a user) *before* revoking the tokens: the clients are found by the `sid` on the token rows
(§2.3 "Remembering Logged-In RPs"). Each client with a `backchannel_logout_uri` gets one
`BackchannelDelivery` row, and after commit one background task per row
(`deliver_backchannel_logout`, below) POSTs a freshly signed logout token (§2.4, §2.5): a slow
or failing app delays nobody's sign-out and no other app. Failures are retried with exponential
backoff for about ten minutes (`IDP_BACKCHANNEL_RETRY_SECONDS`), then marked failed; the row is
the delivery log admins read.

Outgoing calls are safe (Back-Channel Logout §3 leaves it to the OP; the sender is
`oauth_clients.outbound`, shared with the registry's SAML metadata fetch): only the
registered URI, resolved once and checked against private, loopback and link-local addresses
(unless the client is allowed them) and then connected to that very address (no DNS rebinding
between check and connect), TLS verified against the registered host name, no redirects, no
proxies from the environment, a connect/read timeout and a hard deadline for the whole
exchange, at most `MAX_RESPONSE_BYTES` read.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import task
from oauth2_provider.settings import oauth2_settings

from oauth_clients import outbound, uri_rules
from oauth_clients.key_store import sign_jwt
from oauth_clients.keys import ES256, RS256
from oauth_clients.models import AccessToken, BackchannelDelivery, Client, Grant, RefreshToken

logger = logging.getLogger(__name__)

# §2.4: the member of the `events` claim that makes a JWT a logout token.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
# §2.4 explicit typing (RFC 8725 §3.11), so a logout token is never taken for an ID token.
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 (a media type, not a secret)
# A logout token is sent at once; each attempt signs a fresh one, so it may live briefly.
LOGOUT_TOKEN_LIFETIME_SECONDS = 120
# We read at most this much of an app's answer (only the status matters).
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "company-idp back-channel logout"

# Reasons recorded on the delivery rows.
REASON_SESSION_ENDED = "session_ended"
REASON_RP_LOGOUT = "rp_initiated_logout"
REASON_USER_SIGNED_OUT = "user_signed_out"


# --- The logout token (§2.4) -------------------------------------------------------------------


def issuer() -> str:
    """The `iss` of our ID tokens (DOT's OIDC_ISS_ENDPOINT is IDP_ISSUER)."""
    return str(oauth2_settings.OIDC_ISS_ENDPOINT or settings.IDP_ISSUER)


def logout_token_algorithm(client: Client) -> str:
    """The algorithm of the client's ID tokens (`finalize_id_token`): ES256 for a client that
    registered it, else RS256. §2.4: logout tokens are signed like the ID tokens."""
    return ES256 if client.algorithm == ES256 else RS256


def build_logout_token(
    *,
    audience: str,
    sub: str,
    sid: str,
    jti: str,
    algorithm: str = RS256,
    now: int | None = None,
) -> str:
    """A logout token signed like our ID tokens (same key, `kid` and algorithm).

    Claims per §2.4: `iss`, `aud`, `iat`, `exp`, `jti`, the back-channel `events` member, `sub`
    and/or `sid` (both when known); never a `nonce`.
    """
    if not sub and not sid:
        raise ValueError("a logout token names a subject, a session or both")
    issued_at = int(time.time()) if now is None else now
    claims: dict[str, Any] = {
        "iss": issuer(),
        "aud": audience,
        "iat": issued_at,
        "exp": issued_at + LOGOUT_TOKEN_LIFETIME_SECONDS,
        "jti": jti,
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    }
    if sub:
        claims["sub"] = sub
    if sid:
        claims["sid"] = sid
    return sign_jwt(claims, algorithm=algorithm, typ=LOGOUT_TOKEN_TYPE)


# --- Which apps to tell (§2.3), queued with the session's end -------------------------------------


@dataclass(frozen=True, order=True)
class _Target:
    client_pk: int
    sub: str
    sid: str


def _targets(rows: Iterable[tuple[int | None, int | None, str]]) -> set[_Target]:
    return {
        _Target(client_pk=client_pk, sub=str(user_pk) if user_pk is not None else "", sid=sid)
        for client_pk, user_pk, sid in rows
        if client_pk is not None and (user_pk is not None or sid)
    }


def _session_targets(*, sid: str, user: Any = None) -> set[_Target]:
    """Every client that obtained a code or tokens in session `sid`, revoked or not.

    Access and refresh tokens and codes carry the session's sid (ID tokens always come with an
    access token of the same sid, so they add nobody). Read before `revoke_tokens` deletes the
    access tokens.
    """
    filters: dict[str, Any] = {"sid": sid}
    if user is not None:
        filters["user"] = user
    rows: set[tuple[int | None, int | None, str]] = set()
    for model in (AccessToken, RefreshToken, Grant):
        rows.update(
            model.objects.filter(**filters)
            .values_list("application_id", "user_id", "sid")
            .distinct()
        )
    return _targets(rows)


def session_client_ids(*, sid: str) -> set[int]:
    """The clients that obtained a code or tokens in session `sid` (front-channel logout too)."""
    return {target.client_pk for target in _session_targets(sid=sid)} if sid else set()


def _user_targets(*, user: Any) -> set[_Target]:
    """Clients still holding live tokens of `user`, per session (sid "" when none is known)."""
    rows: set[tuple[int | None, int | None, str]] = set()
    for queryset in (
        AccessToken.objects.filter(user=user),
        RefreshToken.objects.filter(user=user, revoked__isnull=True),
        Grant.objects.filter(user=user, consumed_at__isnull=True),
    ):
        rows.update(queryset.values_list("application_id", "user_id", "sid").distinct())
    return _targets(rows)


def _queue(targets: set[_Target], *, reason: str) -> list[BackchannelDelivery]:
    """One delivery row per client and session; each is handed to the worker after commit."""
    if not targets:
        return []
    clients = {
        client.pk: client
        for client in Client.objects.filter(
            pk__in={target.client_pk for target in targets}, is_active=True
        ).exclude(backchannel_logout_uri="")
    }
    queued = []
    for target in sorted(targets):
        client = clients.get(target.client_pk)
        if client is None:
            continue
        if not target.sid and client.backchannel_logout_session_required:
            continue  # §2.2: this app needs a sid to find its session; we know none
        if (
            target.sid
            and BackchannelDelivery.objects.filter(client=client, sid=target.sid).exists()
        ):
            continue  # already told about this session (another path ended it too)
        try:
            with transaction.atomic():
                delivery = BackchannelDelivery.objects.create(
                    client=client, sub=target.sub, sid=target.sid, reason=reason
                )
        except IntegrityError:
            continue  # queued at the same moment by a concurrent end of the same session
        queued.append(delivery)
        transaction.on_commit(partial(enqueue_delivery, delivery_id=delivery.pk), robust=True)
    return queued


def queue_session_logout(*, sid: str, user: Any = None, reason: str = REASON_SESSION_ENDED) -> int:
    """Session `sid` ended: queue a logout token for every app it signed in to. Call it before
    the session's tokens are revoked. Returns how many deliveries were queued."""
    if not sid:
        return 0
    return len(_queue(_session_targets(sid=sid, user=user), reason=reason))


def queue_user_logout(*, user: Any, reason: str = REASON_USER_SIGNED_OUT) -> int:
    """Every token of `user` is about to be revoked: queue a logout token for each app still
    holding one, per session (apps already told about a session are not told twice)."""
    if user is None or user.pk is None:
        return 0
    return len(_queue(_user_targets(user=user), reason=reason))


# --- Safe outgoing requests (the sender itself: oauth_clients.outbound) ------------------------


@dataclass(frozen=True)
class SendOutcome:
    """What one POST achieved. `retryable`: worth trying again later."""

    delivered: bool
    status_code: int | None = None
    error: str = ""
    retryable: bool = False


def resolve_destination(
    uri: str, *, allow_private_network: bool, resolver: uri_rules.Resolver | None = None
) -> tuple[str | None, str, bool]:
    """(address to connect to, refusal, retryable) for a back-channel logout URI, at send time.

    The registration rules are applied again (the URI may predate them), then the safe sender's
    address check (`outbound.check_destination`: resolved once, public unless allowed).
    """
    problem = uri_rules.logout_uri_problem(uri, backchannel=True, allow_private_network=True)
    if problem:
        return None, outbound.clean_text(f"{uri}: {problem}"), False
    return outbound.check_destination(
        uri, allow_private_network=allow_private_network, resolver=resolver
    )


def send_logout_token(
    *,
    uri: str,
    token: str,
    allow_private_network: bool,
    timeout: float | None = None,
    resolver: uri_rules.Resolver | None = None,
    verify: bool | str = True,
) -> SendOutcome:
    """POST `logout_token=<token>` to the registered URI (§2.5), safely (see module docstring).

    §2.8: the app answers 200 (some frameworks 204) on success. Redirects are never followed
    (and not retried); other answers, timeouts and network errors are worth retrying.
    """
    timeout = float(timeout if timeout is not None else settings.IDP_BACKCHANNEL_TIMEOUT_SECONDS)
    address, refusal, retryable = resolve_destination(
        uri, allow_private_network=allow_private_network, resolver=resolver
    )
    if address is None:
        return SendOutcome(delivered=False, error=refusal, retryable=retryable)
    answer = outbound.send_pinned(
        method="POST",
        uri=uri,
        address=address,
        timeout=timeout,
        max_bytes=MAX_RESPONSE_BYTES,
        data={"logout_token": token},
        headers={
            "User-Agent": USER_AGENT,
            "Accept": "application/json, text/plain, */*",
            "Cache-Control": "no-store",
        },
        verify=verify,
    )
    status = answer.status_code
    if status is None:
        return SendOutcome(delivered=False, error=answer.error, retryable=True)
    if 200 <= status < 300:
        return SendOutcome(delivered=True, status_code=status)
    if 300 <= status < 400:
        return SendOutcome(
            delivered=False,
            status_code=status,
            error="answered with a redirect, which is never followed",
        )
    snippet = outbound.clean_text(answer.body[:300].decode("utf-8", "replace"))
    return SendOutcome(
        delivered=False,
        status_code=status,
        error=outbound.clean_text(f"HTTP {status}: {snippet}") if snippet else f"HTTP {status}",
        retryable=True,
    )


# --- One attempt, run by the worker ---------------------------------------------------------------


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after the `attempts`-th failed attempt; None when no retry is left."""
    delays = list(settings.IDP_BACKCHANNEL_RETRY_SECONDS)
    if attempts < 1 or attempts > len(delays):
        return None
    return timedelta(seconds=float(delays[attempts - 1]))


def enqueue_delivery(*, delivery_id: int, run_after: datetime | None = None) -> None:
    """Hand one delivery to the background worker (now, or not before `run_after`)."""
    task = deliver_backchannel_logout
    if run_after is not None:
        task = task.using(run_after=run_after)
    task.enqueue(delivery_id)


def _backend_can_defer() -> bool:
    return bool(deliver_backchannel_logout.get_backend().supports_defer)


def attempt_delivery(*, delivery_id: int) -> str:
    """Send one delivery's logout token once and record the outcome; schedules the retry.

    Returns the delivery's status afterwards. Never raises for a failing app.
    """
    delivery = BackchannelDelivery.objects.select_related("client").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status in (BackchannelDelivery.Status.SENT, BackchannelDelivery.Status.FAILED):
        return str(delivery.status)
    client = delivery.client
    jti = uuid.uuid4().hex
    if not client.is_active or not client.backchannel_logout_uri:
        outcome = SendOutcome(
            delivered=False, error="the app is disabled or no longer has a back-channel logout URI"
        )
    else:
        try:
            token = build_logout_token(
                audience=client.client_id,
                sub=delivery.sub,
                sid=delivery.sid,
                jti=jti,
                algorithm=logout_token_algorithm(client),
            )
            outcome = send_logout_token(
                uri=client.backchannel_logout_uri,
                token=token,
                allow_private_network=client.allow_private_network,
            )
        except Exception as error:  # recorded and retried, never lost
            logger.exception("back-channel logout delivery %s failed unexpectedly", delivery.pk)
            outcome = SendOutcome(
                delivered=False, error=f"internal error: {type(error).__name__}", retryable=True
            )
    now = timezone.now()
    delivery.attempts += 1
    delivery.jti = jti
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.next_attempt_at = None
    delay = retry_delay(delivery.attempts) if outcome.retryable else None
    if outcome.delivered:
        delivery.status = BackchannelDelivery.Status.SENT
        delivery.finished_at = now
    elif delay is not None and _backend_can_defer():
        delivery.status = BackchannelDelivery.Status.RETRYING
        delivery.next_attempt_at = now + delay
    else:
        delivery.status = BackchannelDelivery.Status.FAILED
        delivery.finished_at = now
    delivery.save(
        update_fields=[
            "attempts",
            "jti",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "status",
            "finished_at",
        ]
    )
    logger.info(
        "back-channel logout delivery %s to %s: %s (attempt %d, HTTP %s)",
        delivery.pk,
        client.client_id,
        delivery.status,
        delivery.attempts,
        outcome.status_code,
    )
    if delivery.next_attempt_at is not None:
        enqueue_delivery(delivery_id=delivery.pk, run_after=delivery.next_attempt_at)
    return str(delivery.status)


@task()
def deliver_backchannel_logout(delivery_id: int) -> str:
    """The background task (Django's tasks API; the database queue, run by `manage.py
    db_worker`): one per delivery, so a slow or failing app holds up no other app. Sends one
    logout token (OIDC Back-Channel Logout 1.0 §2.5); `attempt_delivery` schedules retries,
    with exponential backoff, as new tasks."""
    return attempt_delivery(delivery_id=delivery_id)
