"""Telling the SAML apps of an IdP session that it ended (SAML 2.0 Profiles §4.4.3.3: the IdP
sends a LogoutRequest to every other session participant), and the delivery log of each.

The apps and what each knows come from the session's record (`state.session_entries`: NameID
and SessionIndex per assertion); active apps with a single logout URL are told, once per
session (one `BackchannelDelivery` row per app and `sid`, its `channel` saying how):

- through the browser, when one is there (a sign-out here, RP-initiated logout, an app's own
  LogoutRequest): `prepare_browser_logout` writes a row per app with a Redirect or POST logout
  URL before the session ends and parks what the signed-out page needs; `browser_frames` builds
  the signed LogoutRequests when that page is shown (the row turns `sent`): a Redirect-binding
  request is the frame's URL itself, a POST-binding one a frame of our own
  (`/saml/slo/frame/?k=<key>`) whose form posts it to the app;
- over SOAP (Bindings §3.2), when the app's logout URL is a SOAP endpoint: a row and, after
  commit, a background task (`deliver_saml_logout`) through the safe sender
  (`oauth_clients.outbound`), retried like back-channel logout;
- not at all when no browser is there and the app has no SOAP endpoint (an administrator's
  sign-out, a deactivation, a password change elsewhere): a `failed` row saying so.

`queue_session_logout` is called through the engine's door (`oauth_clients.oidc.signout`) on
every end of a session; apps already told through the browser are skipped by their row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks import task
from saml2 import BINDING_HTTP_REDIRECT, BINDING_SOAP, samlp
from saml2.soap import parse_soap_enveloped_saml_logout_response

from oauth_clients import outbound, uri_rules
from oauth_clients.models import BackchannelDelivery, Client, SamlServiceProvider
from oauth_clients.oidc.backchannel import retry_delay
from oauth_clients.saml import state
from oauth_clients.saml.slo import REASON_USER, answers_in_browser, logout_request

logger = logging.getLogger(__name__)

Channel = BackchannelDelivery.Channel
Status = BackchannelDelivery.Status
# Reasons on the rows (beside the back-channel ones, `oidc.backchannel.REASON_*`).
REASON_SP_INITIATED = "saml_sp_initiated_logout"
# The signed-out page is reached at once (`oidc.frontchannel.LINK_MAX_AGE_SECONDS`).
BROWSER_SECONDS = 300
MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "company-idp SAML single logout"
# SAML 2.0 Bindings §3.2.2.3: the SOAPAction of a SAML request over SOAP 1.1.
SOAP_ACTION = "http://www.oasis-open.org/committees/security"
NO_WAY = "no browser was there and the app has no SOAP single logout endpoint"


def _apps_of(entries: list[dict[str, Any]]) -> list[tuple[SamlServiceProvider, dict[str, Any]]]:
    """Each active SAML app of the record with a logout URL, with the NameID of its newest
    assertion and every SessionIndex the session got under that NameID."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        entity = str(entry.get("entity_id", ""))
        if not entity or not entry.get("name_id"):
            continue
        known = merged.get(entity)
        if known is None or known["name_id"] != entry["name_id"]:
            merged[entity] = {**entry, "session_indexes": []}
        if entry.get("session_index"):
            merged[entity]["session_indexes"].append(str(entry["session_index"]))
    if not merged:
        return []
    found = (
        SamlServiceProvider.objects.select_related("client")
        .filter(entity_id__in=list(merged), client__is_active=True, client__kind=Client.Kind.SAML)
        .exclude(slo_url="")
        .order_by("client__name", "pk")
    )
    return [(sp, merged[sp.entity_id]) for sp in found]


def _told(*, sp: SamlServiceProvider, sid: str) -> bool:
    return BackchannelDelivery.objects.filter(client_id=sp.client_id, sid=sid).exists()


def record_delivery(
    *,
    sp: SamlServiceProvider,
    sid: str,
    user: Any,
    reason: str,
    channel: str,
    status: str = Status.QUEUED,
    error: str = "",
    message_id: str = "",
) -> BackchannelDelivery | None:
    """One row of the delivery log; None when the app was already told about this session."""
    now = timezone.now()
    finished = status in (Status.SENT, Status.FAILED)
    try:
        with transaction.atomic():
            return BackchannelDelivery.objects.create(
                client=sp.client,
                sub=str(user.pk) if getattr(user, "pk", None) is not None else "",
                sid=sid,
                reason=reason,
                channel=channel,
                status=status,
                jti=message_id[:64],
                attempts=1 if finished else 0,
                last_attempt_at=now if finished else None,
                finished_at=now if finished else None,
                last_error=outbound.clean_text(error),
            )
    except IntegrityError:
        return None


# --- Through the browser -----------------------------------------------------------------------


def prepare_browser_logout(*, sid: str, user: Any = None, reason: str) -> str | None:
    """Before the session ends: a row for each app to tell through the browser, and the key
    under which the signed-out page finds them (None when there is none)."""
    frames = []
    for sp, entry in _apps_of(state.session_entries(sid=sid, user=user)):
        if not answers_in_browser(sp) or _told(sp=sp, sid=sid):
            continue
        delivery = record_delivery(
            sp=sp, sid=sid, user=user, reason=reason, channel=Channel.SAML_BROWSER
        )
        if delivery is not None:
            frames.append({"delivery": delivery.pk, "sp": sp.pk, "entry": entry})
    if not frames:
        return None
    return state.park({"frames": frames}, seconds=BROWSER_SECONDS)


class SamlFrame(str):
    """A frame of the signed-out page carrying a LogoutRequest: its URL, whether it posts a
    form (our own page: its sandbox needs `allow-forms`), and every origin the frame visits
    (the app's, and ours when the app answers with its LogoutResponse)."""

    posts_form: bool
    origins: tuple[str, ...]

    def __new__(cls, url: str, *, posts_form: bool, origins: tuple[str, ...]) -> SamlFrame:
        frame = super().__new__(cls, url)
        frame.posts_form = posts_form
        frame.origins = origins
        return frame


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def browser_frames(key: str) -> list[SamlFrame]:
    """The signed-out page's SAML frames (once per key); each row turns `sent`."""
    parked = state.take_parked(key) if key else None
    items = parked.get("frames") if parked else None
    if not isinstance(items, list):
        return []
    ours = _origin(settings.IDP_ISSUER)
    frames = []
    for item in items:
        if not isinstance(item, dict):
            continue
        sp_id, delivery_id = item.get("sp"), item.get("delivery")
        if not isinstance(sp_id, int) or not isinstance(delivery_id, int):
            continue
        sp = (
            SamlServiceProvider.objects.select_related("client")
            .filter(pk=sp_id, client__is_active=True)
            .first()
        )
        delivery = BackchannelDelivery.objects.filter(pk=delivery_id).first()
        if sp is None or delivery is None or not answers_in_browser(sp):
            continue
        outgoing = logout_request(sp=sp, entry=dict(item.get("entry") or {}), reason=REASON_USER)
        if outgoing.binding == BINDING_HTTP_REDIRECT:
            frame = SamlFrame(outgoing.url, posts_form=False, origins=(_origin(sp.slo_url), ours))
        else:
            form_key = state.park(
                {
                    "sp": sp.pk,
                    "url": outgoing.url,
                    "field": outgoing.field,
                    "value": outgoing.value,
                },
                seconds=BROWSER_SECONDS,
            )
            frame = SamlFrame(
                f"{reverse('saml:slo_frame')}?{urlencode({'k': form_key})}",
                posts_form=True,
                origins=(ours, _origin(sp.slo_url)),
            )
        _mark_shown(delivery, message_id=outgoing.message_id)
        frames.append(frame)
    return frames


def _mark_shown(delivery: BackchannelDelivery, *, message_id: str) -> None:
    now = timezone.now()
    delivery.status = Status.SENT
    delivery.attempts += 1
    delivery.jti = message_id[:64]
    delivery.last_attempt_at = now
    delivery.finished_at = now
    delivery.save(update_fields=["status", "attempts", "jti", "last_attempt_at", "finished_at"])


# --- Without a browser -------------------------------------------------------------------------


def queue_session_logout(*, sid: str, user: Any = None, reason: str) -> int:
    """The session `sid` ends: every app of its record not yet told gets a SOAP delivery, or a
    row saying it could not be told. Call it before the session is deleted. Returns how many
    SOAP deliveries were queued."""
    if not sid:
        return 0
    queued = 0
    for sp, entry in _apps_of(state.session_entries(sid=sid, user=user)):
        if _told(sp=sp, sid=sid):
            continue
        if sp.slo_binding != BINDING_SOAP:
            record_delivery(
                sp=sp,
                sid=sid,
                user=user,
                reason=reason,
                channel=Channel.SAML_NONE,
                status=Status.FAILED,
                error=NO_WAY,
            )
            continue
        delivery = record_delivery(
            sp=sp, sid=sid, user=user, reason=reason, channel=Channel.SAML_SOAP
        )
        if delivery is not None:
            queued += 1
            transaction.on_commit(
                partial(enqueue_soap_delivery, delivery_id=delivery.pk, entry=entry), robust=True
            )
    return queued


@dataclass(frozen=True)
class SoapOutcome:
    delivered: bool
    status_code: int | None = None
    error: str = ""
    retryable: bool = False
    message_id: str = ""


def _logout_status(body: bytes, *, message_id: str) -> str:
    """ "" when the SOAP answer is a LogoutResponse to `message_id` with status Success, else
    what is wrong (Core §3.7.3.2)."""
    try:
        xml = parse_soap_enveloped_saml_logout_response(body.decode("utf-8"))
        response = samlp.logout_response_from_string(xml)
    except Exception:  # defusedxml's refusals, not SOAP, not a LogoutResponse
        return "the answer is not a SOAP-enveloped LogoutResponse"
    if response is None or response.in_response_to != message_id:
        return "the LogoutResponse answers another request"
    code = response.status.status_code.value if response.status is not None else ""
    if code != samlp.STATUS_SUCCESS:
        return f"the app answered {code or 'no status'}"
    return ""


def send_soap_logout(*, sp: SamlServiceProvider, entry: dict[str, Any]) -> SoapOutcome:
    """One LogoutRequest over SOAP to the app's registered endpoint, through the safe sender."""
    uri = sp.slo_url
    problem = uri_rules.saml_endpoint_problem(uri)
    if problem:
        return SoapOutcome(delivered=False, error=outbound.clean_text(f"{uri}: {problem}"))
    address, refusal, retryable = outbound.check_destination(
        uri, allow_private_network=sp.client.allow_private_network
    )
    if address is None:
        return SoapOutcome(delivered=False, error=refusal, retryable=retryable)
    outgoing = logout_request(sp=sp, entry=entry, reason=None)
    answer = outbound.send_pinned(
        method="POST",
        uri=uri,
        address=address,
        timeout=float(settings.IDP_BACKCHANNEL_TIMEOUT_SECONDS),
        max_bytes=MAX_RESPONSE_BYTES,
        data=outgoing.envelope.encode("utf-8"),
        headers={
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": SOAP_ACTION,
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-store",
        },
    )
    status = answer.status_code
    if status is None:
        return SoapOutcome(delivered=False, error=answer.error, retryable=True)
    if status != 200:
        return SoapOutcome(
            delivered=False,
            status_code=status,
            error=f"HTTP {status}",
            retryable=not 300 <= status < 400,
            message_id=outgoing.message_id,
        )
    wrong = _logout_status(answer.body, message_id=outgoing.message_id)
    return SoapOutcome(
        delivered=not wrong, status_code=status, error=wrong, message_id=outgoing.message_id
    )


def enqueue_soap_delivery(
    *, delivery_id: int, entry: dict[str, Any], run_after: datetime | None = None
) -> None:
    """Hand one SOAP delivery to the background worker (now, or not before `run_after`)."""
    runner = deliver_saml_logout
    if run_after is not None:
        runner = runner.using(run_after=run_after)
    runner.enqueue(delivery_id, entry)


def attempt_soap_delivery(*, delivery_id: int, entry: dict[str, Any]) -> str:
    """Send one SOAP delivery once and record the outcome; schedules the retry. Never raises
    for a failing app. Returns the row's status afterwards."""
    delivery = BackchannelDelivery.objects.select_related("client").filter(pk=delivery_id).first()
    if delivery is None:
        return "missing"
    if delivery.status in (Status.SENT, Status.FAILED):
        return str(delivery.status)
    sp = SamlServiceProvider.objects.select_related("client").filter(client=delivery.client).first()
    if sp is None or not sp.client.is_active or sp.slo_binding != BINDING_SOAP:
        outcome = SoapOutcome(
            delivered=False, error="the app is disabled or no longer has a SOAP logout endpoint"
        )
    else:
        try:
            outcome = send_soap_logout(sp=sp, entry=entry)
        except Exception as error:  # recorded and retried, never lost
            logger.exception("SAML SOAP logout delivery %s failed unexpectedly", delivery.pk)
            outcome = SoapOutcome(
                delivered=False, error=f"internal error: {type(error).__name__}", retryable=True
            )
    now = timezone.now()
    delivery.attempts += 1
    delivery.jti = outcome.message_id[:64]
    delivery.last_attempt_at = now
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outbound.clean_text(outcome.error)
    delivery.next_attempt_at = None
    delay = retry_delay(delivery.attempts) if outcome.retryable else None
    if outcome.delivered:
        delivery.status = Status.SENT
        delivery.finished_at = now
    elif delay is not None and deliver_saml_logout.get_backend().supports_defer:
        delivery.status = Status.RETRYING
        delivery.next_attempt_at = now + delay
    else:
        delivery.status = Status.FAILED
        delivery.finished_at = now
    delivery.save()
    if delivery.next_attempt_at is not None:
        enqueue_soap_delivery(
            delivery_id=delivery.pk, entry=entry, run_after=delivery.next_attempt_at
        )
    return str(delivery.status)


@task()
def deliver_saml_logout(delivery_id: int, entry: dict[str, Any]) -> str:
    """The background task (the database queue, `manage.py db_worker`): one LogoutRequest over
    SOAP to one app (SAML 2.0 Bindings §3.2), retried with backoff like back-channel logout."""
    return attempt_soap_delivery(delivery_id=delivery_id, entry=entry)
