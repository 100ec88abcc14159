"""The SAML endpoints: metadata, SSO over both bindings, the resume step, IdP-initiated sign-in.

SP-initiated (SAML 2.0 Profiles §4.1): the AuthnRequest is checked first
(`authn_request.check_authn_request`; a bad one gets the branded page, or a SAML error Response
once the app's ACS is known), then kept in the session under a random key and handled by
`proceed`, which the resume URL `/saml/sso/continue/<key>/` re-enters after each step:

1. not signed in: allauth's sign-in, back to the resume URL (`IsPassive`: status NoPassive);
2. `ForceAuthn` (like OIDC `prompt=login`): allauth's re-authentication unless the person
   authenticated after the request arrived;
3. a person the app is not open to (`oauth_clients.access.may_use`) gets the OIDC no-access
   page; the app hears RequestDenied only if they go back (`IsPassive`: at once);
4. the app's `requires_mfa`, or a RequestedAuthnContext only a second factor meets
   (`authn_context.py`): the second factor, as at the OIDC authorization endpoint;
5. the Response, posted to the ACS (`response.issue_assertion`), stating the strongest class
   the session has that the request accepts.

The HTTP-POST binding arrives cross-site without the session cookie (SameSite=Lax): the checked
request is parked (`state.park`) and the browser sent to the resume URL, whose same-site GET
carries the session.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

from accounts.mfa_policy import second_factor_url
from accounts.sessions import has_second_factor, last_authenticated_at, session_binding
from oauth_clients.access import may_use
from oauth_clients.models import Client, SamlServiceProvider
from oauth_clients.oidc.app_access import record_access_denied
from oauth_clients.saml import authn_context, state
from oauth_clients.saml.authn_request import (
    AnswerableError,
    CheckedRequest,
    check_authn_request,
    post_acs,
)
from oauth_clients.saml.errors import NO_PASSIVE, REQUEST_DENIED, RESPONDER, Refusal, StatusError
from oauth_clients.saml.idp import metadata_document
from oauth_clients.saml.response import error_response, issue_assertion

ERROR_TEMPLATE = "oauth2_provider/authorize_error.html"
NO_ACCESS_TEMPLATE = "oauth2_provider/no_access.html"
MFA_TEMPLATE = "oauth2_provider/mfa_required.html"
SAML_PARAMETERS = ("SAMLRequest", "RelayState", "SigAlg", "Signature")
METADATA_MAX_AGE = 300


@login_not_required
@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    """GET /saml/metadata/: our EntityDescriptor (SAML 2.0 Metadata §2.3.2, §4.1.1 media type)."""
    response = HttpResponse(metadata_document(), content_type="application/samlmetadata+xml")
    response["Cache-Control"] = f"public, max-age={METADATA_MAX_AGE}"
    return response


def refusal_page(request: HttpRequest, refusal: Refusal) -> HttpResponse:
    context = {"message": refusal.user_message, "description": refusal.detail}
    return render(request, ERROR_TEMPLATE, context, status=HTTPStatus.BAD_REQUEST)


def _answer_error(request: HttpRequest, failure: AnswerableError) -> HttpResponse:
    answer = failure.answer
    return error_response(
        request,
        sp=answer.sp,
        acs_url=answer.acs_url,
        in_response_to=answer.request_id,
        relay_state=answer.relay_state,
        error=failure.error,
    )


def _receive(request: HttpRequest, binding: str) -> CheckedRequest | HttpResponse:
    params = request.GET if binding == BINDING_HTTP_REDIRECT else request.POST
    if any(len(params.getlist(name)) > 1 for name in SAML_PARAMETERS):
        return refusal_page(request, Refusal("malformed", "A SAML parameter is repeated."))
    try:
        checked = check_authn_request(
            binding=binding,
            saml_request=params.get("SAMLRequest", ""),
            relay_state=params.get("RelayState", ""),
            query_string=request.META.get("QUERY_STRING", ""),
        )
    except Refusal as refusal:
        return refusal_page(request, refusal)
    except AnswerableError as failure:
        return _answer_error(request, failure)
    return checked


@login_not_required
@never_cache
@require_GET
def sso_redirect(request: HttpRequest) -> HttpResponseBase:
    """GET /saml/sso/redirect/: an AuthnRequest over HTTP-Redirect (Bindings §3.4)."""
    checked = _receive(request, BINDING_HTTP_REDIRECT)
    if isinstance(checked, HttpResponse):
        return checked
    key = state.new_key()
    pending = checked.as_pending()
    state.keep(request, key, pending)
    return proceed(request, key, pending, sp=checked.sp)


@csrf_exempt  # the app's page posts here (Bindings §3.5); the request is checked instead
@login_not_required
@never_cache
@require_POST
def sso_post(request: HttpRequest) -> HttpResponseBase:
    """POST /saml/sso/post/: an AuthnRequest over HTTP-POST (Bindings §3.5)."""
    checked = _receive(request, BINDING_HTTP_POST)
    if isinstance(checked, HttpResponse):
        return checked
    key = state.park(checked.as_pending())
    return HttpResponseRedirect(
        reverse("saml:sso_continue", kwargs={"key": key}), status=HTTPStatus.SEE_OTHER
    )


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def sso_continue(request: HttpRequest, key: str) -> HttpResponseBase:
    """GET /saml/sso/continue/<key>/: the pending request, after sign-in or another step; POST
    from the no-access page's "Back to the app" (CSRF-checked)."""
    pending = state.find(request, key) or state.claim(request, key)
    if pending is None:
        return refusal_page(request, Refusal("expired", "No pending sign-in request has this key."))
    return proceed(request, key, pending)


def _pending_app(pending: dict[str, Any]) -> SamlServiceProvider | None:
    sp_id = pending.get("sp_id")
    if not isinstance(sp_id, int):
        return None
    sp = SamlServiceProvider.objects.select_related("client").filter(pk=sp_id).first()
    if sp is None or sp.entity_id != pending.get("entity_id"):
        return None
    if not sp.client.is_active or sp.client.kind != Client.Kind.SAML:
        return None
    if sp.acs_for(url=pending.get("acs_url"), binding=BINDING_HTTP_POST) is None:
        return None
    return sp


def proceed(
    request: HttpRequest,
    key: str,
    pending: dict[str, Any],
    *,
    sp: SamlServiceProvider | None = None,
) -> HttpResponseBase:
    """The steps of the module docstring for one pending request; `sp`: the app as the check
    just read it (the first step of a redirect-binding request), else read afresh here."""
    sp = sp or _pending_app(pending)
    if sp is None:
        state.forget(request, key)
        return refusal_page(request, Refusal("unknown_app", "The app changed or was disabled."))
    client = sp.client
    passive = bool(pending.get("is_passive"))
    continue_url = reverse("saml:sso_continue", kwargs={"key": key})

    def answer(detail: str, status: str) -> HttpResponse:
        state.forget(request, key)
        return error_response(
            request,
            sp=sp,
            acs_url=pending["acs_url"],
            in_response_to=pending["request_id"],
            relay_state=pending.get("relay_state", ""),
            error=StatusError(detail, status=status, top=RESPONDER),
        )

    user = request.user
    if not user.is_authenticated:
        if passive:
            return answer("The person is not signed in (IsPassive).", NO_PASSIVE)
        return redirect_to_login(continue_url, resolve_url(settings.LOGIN_URL), "next")
    if pending.get("force_authn") and (last_authenticated_at(request) or 0) < int(
        pending.get("received_at", 0)
    ):
        if passive:
            return answer("ForceAuthn needs the person to authenticate (IsPassive).", NO_PASSIVE)
        query = urlencode({"next": continue_url})
        return HttpResponseRedirect(f"{reverse('account_reauthenticate')}?{query}")
    if request.method == "POST" and "back" in request.POST:
        return answer("The person may not use this app.", REQUEST_DENIED)
    if not may_use(user=user, client=client):
        record_access_denied(user=user, client=client, request=request, prompt_none=passive)
        if passive:
            return answer("The person may not use this app.", REQUEST_DENIED)
        return render_no_access(request, client, form_action=continue_url)
    second_factor = has_second_factor(session_binding(request).amr)
    class_ref = authn_context.class_for(
        requested=authn_context.from_pending(pending.get("authn_context")),
        second_factor=second_factor,
    )
    if (client.requires_mfa or class_ref is None) and not second_factor:
        if passive:
            return answer("The app requires a second factor (IsPassive).", NO_PASSIVE)
        return require_second_factor(request, client, next_url=continue_url)
    state.forget(request, key)
    try:
        return issue_assertion(
            request,
            sp=sp,
            acs_url=pending["acs_url"],
            in_response_to=pending["request_id"],
            relay_state=pending.get("relay_state", ""),
            class_ref=class_ref,
        )
    except StatusError as error:
        return error_response(
            request,
            sp=sp,
            acs_url=pending["acs_url"],
            in_response_to=pending["request_id"],
            relay_state=pending.get("relay_state", ""),
            error=error,
        )


def render_no_access(request: HttpRequest, client: Client, *, form_action: str) -> HttpResponse:
    """The OIDC no-access page: the app, whom to ask, and "Back to the app"."""
    context = {
        "application": client,
        "owner_contact": client.owner_contact,
        "form_action": form_action,
    }
    return render(request, NO_ACCESS_TEMPLATE, context, status=HTTPStatus.FORBIDDEN)


def require_second_factor(request: HttpRequest, client: Client, *, next_url: str) -> HttpResponse:
    """Client.requires_mfa, as at the OIDC authorization endpoint: allauth's second-factor
    re-authentication, or the page telling a person without one to set it up."""
    url = second_factor_url(request, next_url=next_url)
    if url is not None:
        return HttpResponseRedirect(url)
    return render(request, MFA_TEMPLATE, {"application": client}, status=HTTPStatus.FORBIDDEN)


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def idp_initiated(request: HttpRequest, client_id: str) -> HttpResponseBase:
    """GET /saml/sso/idp-initiated/<client_id>/: sign in to a SAML app from the app launcher
    (SAML 2.0 Profiles §4.1.5, unsolicited Response), under the same rules as a request."""
    sp = (
        SamlServiceProvider.objects.select_related("client")
        .filter(client__client_id=client_id, client__kind=Client.Kind.SAML)
        .first()
    )
    if sp is None or not sp.client.is_active:
        return refusal_page(request, Refusal("unknown_app", "No active SAML app has this id."))
    if not request.user.is_authenticated:
        return redirect_to_login(request.path, resolve_url(settings.LOGIN_URL), "next")
    if request.method == "POST" and "back" in request.POST:
        # Nothing asked: nothing to answer; back to the launcher.
        return HttpResponseRedirect(reverse("account_my_apps"))
    client = sp.client
    if not may_use(user=request.user, client=client):
        record_access_denied(user=request.user, client=client, request=request)
        return render_no_access(request, client, form_action=request.path)
    if client.requires_mfa and not has_second_factor(session_binding(request).amr):
        return require_second_factor(request, client, next_url=request.path)
    try:
        acs_url = post_acs(sp)
    except Refusal as refusal:
        return refusal_page(request, refusal)
    try:
        return issue_assertion(request, sp=sp, acs_url=acs_url, in_response_to=None, relay_state="")
    except StatusError as error:
        return error_response(
            request, sp=sp, acs_url=acs_url, in_response_to=None, relay_state="", error=error
        )
