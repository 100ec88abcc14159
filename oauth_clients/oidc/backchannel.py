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

Outgoing calls are safe (Back-Channel Logout §3 leaves it to the OP): only the
registered URI, resolved once and checked against private, loopback and link-local addresses
(unless the client is allowed them) and then connected to that very address (no DNS rebinding
between check and connect), TLS verified against the registered host name, no redirects, no
proxies from the environment, a connect/read timeout and a hard deadline for the whole
exchange, at most `MAX_RESPONSE_BYTES` read.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import task
from oauth2_provider.settings import oauth2_settings
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from oauth_clients import uri_rules
from oauth_clients.keys import ES256, RS256, sign_jwt
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
# An error text kept in the delivery log is cut to this length.
MAX_ERROR_LENGTH = 500
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


# --- Safe outgoing requests -----------------------------------------------------------------------

_current = threading.local()


class _Deadline:
    """A hard limit on one whole HTTP exchange: when it passes, the sockets are shut down, so no
    slow handshake, header or body can hold the worker longer (per-read timeouts alone could)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _current.deadline = None

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _track(sock: socket.socket) -> socket.socket:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.track(sock)
    return sock


class _TrackedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _track(super()._new_conn())


class _TrackedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        # The raw socket, before the TLS handshake: the deadline covers the handshake too.
        return _track(super()._new_conn())


class _TrackedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class PinnedAddressAdapter(HTTPAdapter):
    """Connects to one address checked beforehand, whatever DNS says by then.

    The URL's host name stays the Host header, the TLS server name (SNI) and the name the
    certificate must match; only the TCP connection goes to `address`.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _TrackedHTTPConnectionPool,
            "https": _TrackedHTTPSConnectionPool,
        }

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        host_params["host"] = self.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = hostname
            pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


@dataclass(frozen=True)
class SendOutcome:
    """What one POST achieved. `retryable`: worth trying again later."""

    delivered: bool
    status_code: int | None = None
    error: str = ""
    retryable: bool = False


def _clean(text: str) -> str:
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split())[:MAX_ERROR_LENGTH]


def resolve_destination(
    uri: str, *, allow_private_network: bool, resolver: uri_rules.Resolver | None = None
) -> tuple[str | None, str, bool]:
    """(address to connect to, refusal, retryable) for a back-channel logout URI, at send time.

    The registration rules are applied again (the URI may predate them), the host is resolved
    once, and every address it resolves to must be public unless the client may call private
    ones (`uri_rules.host_is_internal`, the same check as at registration).
    """
    problem = uri_rules.logout_uri_problem(uri, backchannel=True, allow_private_network=True)
    if problem:
        return None, _clean(f"{uri}: {problem}"), False
    host = (urlsplit(uri).hostname or "").strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = (resolver or uri_rules.resolve_host)(host)
    if not addresses:
        return None, _clean(f"{host} does not resolve"), True
    if not allow_private_network:
        internal, why = uri_rules.host_is_internal(host, resolver=lambda _host: addresses)
        if internal:
            return (
                None,
                _clean(f"refused: {why} (the client may not call private addresses)"),
                False,
            )
    return addresses[0], "", False


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
    parts = urlsplit(uri)
    session = requests.Session()
    session.trust_env = False  # no proxy, netrc or CA bundle from the environment
    adapter = PinnedAddressAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    headers = {
        "Host": parts.netloc,
        "User-Agent": USER_AGENT,
        "Accept": "application/json, text/plain, */*",
        "Cache-Control": "no-store",
    }
    deadline = _Deadline(timeout * 2)
    try:
        with deadline:
            response = session.post(
                uri,
                data={"logout_token": token},
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
                verify=verify,
            )
            try:
                body = b""
                for chunk in response.iter_content(chunk_size=8192):
                    body += chunk
                    if len(body) >= MAX_RESPONSE_BYTES:
                        break
            finally:
                response.close()
    except requests.RequestException as error:
        if deadline.expired:
            return SendOutcome(
                delivered=False,
                error=f"no complete answer within {deadline.seconds:g} s",
                retryable=True,
            )
        kind = "timed out" if isinstance(error, requests.Timeout) else "connection failed"
        return SendOutcome(delivered=False, error=_clean(f"{kind}: {error}"), retryable=True)
    finally:
        session.close()
    status = response.status_code
    if 200 <= status < 300:
        return SendOutcome(delivered=True, status_code=status)
    if 300 <= status < 400:
        return SendOutcome(
            delivered=False,
            status_code=status,
            error="answered with a redirect, which is never followed",
        )
    snippet = _clean(body[:300].decode("utf-8", "replace"))
    return SendOutcome(
        delivered=False,
        status_code=status,
        error=_clean(f"HTTP {status}: {snippet}") if snippet else f"HTTP {status}",
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
