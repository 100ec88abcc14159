"""Single logout endpoints (SAML 2.0 Profiles §4.4): an app's LogoutRequest over HTTP-Redirect
(`/saml/slo/redirect/`) or HTTP-POST (`/saml/slo/post/`), and the steps after it.

An app's LogoutRequest is checked first (`logout_request.check_logout_request`; a bad one gets
the branded page, or a LogoutResponse with the status once the app's logout URL is known). A
POST arrives cross-site without the session cookie (SameSite=Lax): it is parked and the browser
sent to `/saml/slo/continue/<key>/`, whose same-site GET carries the session. Then
(`proceed`):

1. the NameID (and SessionIndex, when given) must be one this browser session gave the app
   (`state.SESSIONS_KEY`); otherwise the answer is UnknownPrincipal and the session stays;
2. the answer (Success) is built and parked, the app's row written in the delivery log;
3. the signed-out page is prepared (`oidc.frontchannel.logged_out_url`: the OIDC apps'
   front-channel frames and every other SAML app's LogoutRequest in a frame), then the IdP
   session ends through allauth's logout (Django's `user_logged_out` →
   `accounts.services.record_logout` → the engine's door: back-channel logout to the OIDC
   apps, SOAP to SAML apps with a SOAP endpoint);
4. the browser passes the signed-out page (when it has frames) and reaches
   `/saml/slo/respond/<key>/`, which carries the LogoutResponse to the app's registered logout
   URL over its binding.

A person who is not signed in here any more gets Success at once (nothing left to end).
The LogoutResponses apps send back to our frames land on a small signed-out page.
"""

from __future__ import annotations

from dataclasses import asdict
from http import HTTPStatus
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from csp.decorators import csp_replace
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from accounts.sessions import get_sid
from oauth_clients.models import BackchannelDelivery, Client, SamlServiceProvider
from oauth_clients.oidc.frontchannel import logged_out_url
from oauth_clients.saml import state
from oauth_clients.saml.errors import UNKNOWN_PRINCIPAL, Refusal, StatusError
from oauth_clients.saml.logout_request import (
    AnswerableLogout,
    CheckedLogout,
    check_logout_request,
)
from oauth_clients.saml.response import auto_post_page
from oauth_clients.saml.slo import Outgoing, answers_in_browser, logout_response
from oauth_clients.saml.slo_delivery import REASON_SP_INITIATED, record_delivery

ERROR_TEMPLATE = "oauth2_provider/authorize_error.html"
DONE_TEMPLATE = "saml/logout_done.html"
SAML_PARAMETERS = ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature")
# The signed-out page is passed at once; the parked answer waits this long.
ANSWER_SECONDS = 300


def refusal_page(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    context = {"message": refusal.logout_message, "description": refusal.detail}
    return render(request, ERROR_TEMPLATE, context, status=HTTPStatus.BAD_REQUEST)


def send(
    request: HttpRequest, *, sp: SamlServiceProvider, outgoing: Outgoing, status: int = 200
) -> HttpResponse:
    """The message to the app's registered logout URL: a redirect (Bindings §3.4.4) or the
    auto-posting page (§3.5.4; submitted by oauth_clients/static/oauth_clients/saml-post.js)."""
    if outgoing.binding == BINDING_HTTP_REDIRECT:
        return HttpResponseRedirect(outgoing.url)
    return auto_post_page(
        request,
        application=sp.client,
        action=outgoing.url,
        field=outgoing.field,
        value=outgoing.value,
        relay_state=outgoing.relay_state,
        signing_out=True,
        status=status,
    )


def _answer_refusal(request: HttpRequest, failure: AnswerableLogout) -> HttpResponse:
    outgoing = logout_response(
        sp=failure.sp,
        request=failure.request,
        relay_state=failure.relay_state,
        error=failure.error,
    )
    return send(request, sp=failure.sp, outgoing=outgoing)


def _receive(request: HttpRequest, binding: str) -> CheckedLogout | HttpResponse:
    params = request.GET if binding == BINDING_HTTP_REDIRECT else request.POST
    if any(len(params.getlist(name)) > 1 for name in SAML_PARAMETERS):
        return refusal_page(request, Refusal("malformed", "A SAML parameter is repeated."))
    try:
        return check_logout_request(
            binding=binding,
            saml_request=params.get("SAMLRequest", ""),
            relay_state=params.get("RelayState", ""),
            query_string=request.META.get("QUERY_STRING", ""),
        )
    except Refusal as refusal:
        return refusal_page(request, refusal)
    except AnswerableLogout as failure:
        return _answer_refusal(request, failure)


def _answer_of_app(request: HttpRequest) -> HttpResponse:
    """An app's LogoutResponse to one of our LogoutRequests (in a frame of the signed-out
    page): nothing more to do; a small page for the frame."""
    return render(request, DONE_TEMPLATE)


@login_not_required
@never_cache
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
@require_GET
def slo_redirect(request: HttpRequest) -> HttpResponseBase:
    """GET /saml/slo/redirect/: a LogoutRequest (or an app's LogoutResponse) over HTTP-Redirect
    (Bindings §3.4)."""
    if "SAMLRequest" not in request.GET and "SAMLResponse" in request.GET:
        return _answer_of_app(request)
    checked = _receive(request, BINDING_HTTP_REDIRECT)
    if isinstance(checked, HttpResponse):
        return checked
    return proceed(request, checked)


@csrf_exempt  # the app's page posts here (Bindings §3.5); the request is checked instead
@login_not_required
@never_cache
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
@require_http_methods(["POST"])
def slo_post(request: HttpRequest) -> HttpResponseBase:
    """POST /saml/slo/post/: a LogoutRequest (or an app's LogoutResponse) over HTTP-POST
    (Bindings §3.5)."""
    if "SAMLRequest" not in request.POST and "SAMLResponse" in request.POST:
        return _answer_of_app(request)
    checked = _receive(request, BINDING_HTTP_POST)
    if isinstance(checked, HttpResponse):
        return checked
    key = state.park(checked.as_dict())
    return HttpResponseRedirect(
        reverse("saml:slo_continue", kwargs={"key": key}), status=HTTPStatus.SEE_OTHER
    )


@login_not_required
@never_cache
@require_GET
def slo_continue(request: HttpRequest, key: str) -> HttpResponseBase:
    """GET /saml/slo/continue/<key>/: a checked HTTP-POST LogoutRequest, with the session."""
    parked = state.take_parked(key)
    checked = CheckedLogout.from_dict(parked) if parked is not None else None
    if checked is None:
        return refusal_page(
            request, Refusal("expired", "No pending sign-out request has this key.")
        )
    return proceed(request, checked)


def _app(checked: CheckedLogout) -> SamlServiceProvider | None:
    sp = SamlServiceProvider.objects.select_related("client").filter(pk=checked.sp_id).first()
    if sp is None or sp.entity_id != checked.entity_id:
        return None
    if not sp.client.is_active or sp.client.kind != Client.Kind.SAML:
        return None
    return sp if answers_in_browser(sp) else None


def session_knows(entries: list[dict[str, Any]], checked: CheckedLogout) -> bool:
    """The request names a NameID this session gave the app (`state.entries_naming`)."""
    return state.entries_naming(
        entries,
        entity_id=checked.entity_id,
        name_id=checked.name_id,
        name_id_format=checked.name_id_format,
        session_indexes=checked.session_indexes,
    )


def proceed(request: HttpRequest, checked: CheckedLogout) -> HttpResponseBase:
    """Steps 1 to 4 of the module docstring for one checked LogoutRequest."""
    sp = _app(checked)
    if sp is None:
        return refusal_page(request, Refusal("unknown_app", "The app changed or was disabled."))
    stub = checked.request_stub()
    user = request.user
    if not user.is_authenticated:
        outgoing = logout_response(sp=sp, request=stub, relay_state=checked.relay_state)
        return send(request, sp=sp, outgoing=outgoing)
    if not session_knows(state.signed_in_apps(request), checked):
        error = StatusError(
            "This session gave the app no such NameID or SessionIndex.", status=UNKNOWN_PRINCIPAL
        )
        outgoing = logout_response(
            sp=sp, request=stub, relay_state=checked.relay_state, error=error
        )
        return send(request, sp=sp, outgoing=outgoing)
    sid = get_sid(request)
    outgoing = logout_response(sp=sp, request=stub, relay_state=checked.relay_state)
    record_delivery(
        sp=sp,
        sid=sid,
        user=user,
        reason=REASON_SP_INITIATED,
        channel=BackchannelDelivery.Channel.SAML_BROWSER,
        status=BackchannelDelivery.Status.SENT,
        message_id=outgoing.message_id,
    )
    key = state.park({"sp": sp.pk, "outgoing": asdict(outgoing)}, seconds=ANSWER_SECONDS)
    answer_url = reverse("saml:slo_respond", kwargs={"key": key})
    signed_out_page = logged_out_url(
        sid=sid, next_url=answer_url, reason=REASON_SP_INITIATED, user=user
    )
    # allauth's logout: Django's user_logged_out → accounts.services.record_logout → the
    # engine's door (back-channel and SOAP deliveries), the session flushed.
    get_account_adapter(request).logout(request)
    return HttpResponseRedirect(signed_out_page or answer_url)


def _parked_app(parked: dict[str, Any]) -> SamlServiceProvider | None:
    sp_id = parked.get("sp")
    if not isinstance(sp_id, int):
        return None
    return SamlServiceProvider.objects.select_related("client").filter(pk=sp_id).first()


@login_not_required
@never_cache
@require_GET
def slo_respond(request: HttpRequest, key: str) -> HttpResponseBase:
    """GET /saml/slo/respond/<key>/: the parked LogoutResponse, to the app (once)."""
    parked = state.take_parked(key)
    sp = _parked_app(parked) if parked is not None else None
    try:
        outgoing = Outgoing(**parked["outgoing"]) if parked is not None else None
    except (KeyError, TypeError):
        outgoing = None
    if sp is None or outgoing is None or not answers_in_browser(sp):
        return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))
    return send(request, sp=sp, outgoing=outgoing)


@login_not_required
@never_cache
@xframe_options_sameorigin
@csp_replace({"frame-ancestors": ["'self'"]})
@require_GET
def slo_frame(request: HttpRequest) -> HttpResponseBase:
    """GET /saml/slo/frame/?k=<key>: a frame of the signed-out page that posts one of our
    LogoutRequests to an app registered for HTTP-POST (`slo_delivery.browser_frames`)."""
    parked = state.take_parked(request.GET.get("k", ""))
    sp = _parked_app(parked) if parked is not None else None
    if sp is None or parked is None or parked.get("url") != sp.slo_url:
        return render(request, DONE_TEMPLATE, status=HTTPStatus.NOT_FOUND)
    outgoing = Outgoing(
        message_id="",
        binding=BINDING_HTTP_POST,
        url=sp.slo_url,
        field=str(parked.get("field", "SAMLRequest")),
        value=str(parked.get("value", "")),
    )
    return send(request, sp=sp, outgoing=outgoing)
