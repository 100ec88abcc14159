"""Single logout over SOAP (SAML 2.0 Bindings §3.2; Profiles §4.4.4.2): an app's LogoutRequest
sent back-channel to `/saml/slo/soap/` (published in our metadata as a SingleLogoutService with
the SOAP binding), answered with our signed LogoutResponse in the SOAP envelope of the response.

No browser comes with it, so the sessions to end are found from what the request names
(`state.sessions_named`: every live session that gave this app this NameID, and one of the
SessionIndexes when the request lists any). Each ends as an SP-initiated logout in the browser
does (`slo_views.proceed`): the app's own row in the delivery log (answered over SOAP, so it is
not sent a LogoutRequest of its own), then the session ended through the engine's door
(`accounts.services.end_session_at_apps_request`: back-channel logout to the OIDC apps, SOAP
LogoutRequests to the session's SAML apps with a SOAP endpoint; the SAML apps that registered
only a browser binding cannot be reached without a browser and get a `failed` row saying so,
as for an administrator's sign-out), its tokens revoked, a `logout` audit row naming the app.

What is refused, never with a 500:
- at the SOAP layer, a SOAP 1.1 fault (`Client`; HTTP 400, 413 for a body over
  `MAX_BODY_BYTES`): a body that is not a SOAP envelope with one LogoutRequest in its Body, a
  DTD or entity in it (defusedxml, through pysaml2's `parse_soap_enveloped_saml_thingy`: no
  XXE, no billion laughs), an Issuer that is no registered, active SAML app (there is nobody to
  sign an answer to). SOAP 1.1 §6.2 pairs a fault with HTTP 500; here a 500 means our own
  failure, and these are the caller's errors, so they go out as 4xx with the same envelope;
- once the app is known, a signed LogoutResponse with a non-success status (Core §3.7.3.2) in
  the envelope, HTTP 200: unsigned (every app must sign: `logout_request`), a bad signature,
  a replayed ID, a stale IssueInstant, a Destination that is not this endpoint
  (Requester); a NameID / SessionIndex no live session gave the app (UnknownPrincipal, which
  is also the answer when that session already ended).
"""

from __future__ import annotations

from http import HTTPStatus
from xml.sax.saxutils import escape

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from saml2 import BINDING_SOAP
from saml2.schema import soapenv
from saml2.soap import parse_soap_enveloped_saml_logout_request

from accounts.services import end_session_at_apps_request
from oauth_clients.models import BackchannelDelivery, SamlServiceProvider
from oauth_clients.saml import state
from oauth_clients.saml.errors import UNKNOWN_PRINCIPAL, Refusal, StatusError
from oauth_clients.saml.logout_request import (
    AnswerableLogout,
    CheckedLogout,
    check_logout_request,
)
from oauth_clients.saml.slo import soap_logout_response
from oauth_clients.saml.slo_delivery import REASON_SP_INITIATED, record_delivery

# Bounded like the other bindings' requests (authn_request.MAX_ENCODED_BYTES).
MAX_BODY_BYTES = 64 * 1024
SOAP_CONTENT_TYPE = "text/xml; charset=utf-8"


def soap_fault(detail: str, *, status: int = HTTPStatus.BAD_REQUEST) -> HttpResponse:
    """A SOAP 1.1 fault (§4.4) with faultcode Client: the caller's message is at fault. Written
    out rather than through ElementTree, whose prefix registry is process-wide (pysaml2's
    envelopes would change prefix) and cannot declare the prefix faultcode's QName needs."""
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{soapenv.NAMESPACE}"><SOAP-ENV:Body>'
        "<SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode>"
        f"<faultstring>{escape(detail)}</faultstring></SOAP-ENV:Fault>"
        "</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    return HttpResponse(xml.encode("utf-8"), status=status, content_type=SOAP_CONTENT_TYPE)


def _soap(envelope: str) -> HttpResponse:
    return HttpResponse(envelope.encode("utf-8"), content_type=SOAP_CONTENT_TYPE)


def _read_body(request: HttpRequest) -> bytes | None:
    """The request body, or None when it is (or says it is) over MAX_BODY_BYTES."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return None
    body = request.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


def end_sessions_named(*, request: HttpRequest, checked: CheckedLogout) -> str:
    """End every session the checked request names (see the module docstring); the SOAP
    envelope of our answer."""
    sp = SamlServiceProvider.objects.select_related("client").get(pk=checked.sp_id)
    stub = checked.request_stub()
    sessions = state.sessions_named(
        entity_id=checked.entity_id,
        name_id=checked.name_id,
        name_id_format=checked.name_id_format,
        session_indexes=checked.session_indexes,
    )
    model = get_user_model()
    ids = {user_id: model._meta.pk.to_python(user_id) for _key, user_id, _sid in sessions}
    users = model.objects.in_bulk(list(ids.values()))
    sessions = [entry for entry in sessions if ids[entry[1]] in users]
    if not sessions:
        error = StatusError(
            "No session here gave the app this NameID or SessionIndex.", status=UNKNOWN_PRINCIPAL
        )
        return soap_logout_response(sp=sp, request=stub, error=error)[1]
    message_id, envelope = soap_logout_response(sp=sp, request=stub)
    with transaction.atomic():
        for session_key, user_id, sid in sessions:
            user = users[ids[user_id]]
            if sid:
                record_delivery(
                    sp=sp,
                    sid=sid,
                    user=user,
                    reason=REASON_SP_INITIATED,
                    channel=BackchannelDelivery.Channel.SAML_SOAP,
                    status=BackchannelDelivery.Status.SENT,
                    message_id=message_id,
                )
            end_session_at_apps_request(
                user=user,
                session_key=session_key,
                request=request,
                client=sp.client,
                reason=REASON_SP_INITIATED,
            )
    return envelope


@csrf_exempt  # an app's server posts here (Bindings §3.2); the signed request is checked
@login_not_required
@never_cache
@require_http_methods(["POST"])
def slo_soap(request: HttpRequest) -> HttpResponse:
    """POST /saml/slo/soap/: an app's LogoutRequest over SOAP (see the module docstring)."""
    body = _read_body(request)
    if body is None:
        return soap_fault(
            "The request is larger than this endpoint accepts.",
            status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        )
    try:
        inner = parse_soap_enveloped_saml_logout_request(body.decode("utf-8"))
    except Exception:  # defusedxml's, ElementTree's and pysaml2's refusals alike
        return soap_fault("The body is not a SOAP envelope carrying one LogoutRequest.")
    if not inner:
        return soap_fault("The body is not a SOAP envelope carrying one LogoutRequest.")
    xml = inner.decode("utf-8") if isinstance(inner, bytes) else str(inner)
    try:
        checked = check_logout_request(binding=BINDING_SOAP, saml_request=xml, relay_state="")
    except Refusal as refusal:
        return soap_fault(refusal.detail)
    except AnswerableLogout as failure:
        _id, envelope = soap_logout_response(
            sp=failure.sp, request=failure.request, error=failure.error
        )
        return _soap(envelope)
    return _soap(end_sessions_named(request=request, checked=checked))
