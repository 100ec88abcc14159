"""The device authorization grant's two faces (RFC 8628): the device's endpoint and the person's
`/device` pages.

- `device_authorization`: POST /o/device-authorization/ (§3.1-3.2), a machine endpoint like the
  token endpoint (`form_problem`, no session): oauthlib's endpoint as fixed in
  `oauth_clients.oidc.device_grant`, codes stored by `oauth_clients.oidc.device`.
- `/device` (§3.3): the person signs in first (the house's sign-in, with its second factor),
  types the code (pre-filled from `verification_uri_complete`, still confirmed by a button),
  then `/device/confirm` shows the app by name and logo, what it will see, and asks whether
  they started this on their own device (§5.4: remote phishing). The app's access rules and
  second-factor rule apply as at /o/authorize/; "Allow" remembers consent as the code flow does.
  `/device/done` closes the story. The pending authorization rides in the session by id only.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter as get_account_adapter
from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from oauth2_provider.settings import oauth2_settings

from accounts.sessions import has_second_factor, session_binding
from oauth_clients.access import may_use
from oauth_clients.oidc import device as device_flow
from oauth_clients.oidc.app_access import record_access_denied
from oauth_clients.oidc.consent import grant_consent
from oauth_clients.oidc.device_grant import DeviceAuthorizationEndpoint
from oauth_clients.oidc.views.token import back_channel_view, form_problem, oauthlib_response

# The pending device authorization this browser entered the code of (its id; never a code).
SESSION_KEY = "idp_device_authorization"

REFUSALS = {
    "code entered too many times": _(
        "This code was entered too many times and no longer works. Start again on your device "
        "to get a new code."
    ),
    "code already used": _("This code has already been used. Start again on your device."),
}
WRONG_CODE = _(
    "That code is not right or has expired. Check the code your device shows and try again."
)


# ----------------------------------------------------------------------------- the device's side


def _device_authorization(request: HttpRequest) -> HttpResponse:
    problem = form_problem(request)
    if problem is not None:
        return problem
    server = DeviceAuthorizationEndpoint(oauth2_settings.OAUTH2_VALIDATOR_CLASS())
    core = oauth2_settings.OAUTH2_BACKEND_CLASS(server)
    headers, body, status = core.create_device_authorization_response(request)
    if isinstance(body, dict):  # oauthlib answers success as a dict, errors as JSON text
        body = json.dumps(body)
    return oauthlib_response(headers, body, status)


# CSRF-exempt, no sign-in, never cached (RFC 8628 §3.2 answers as RFC 6749 §5.1: no-store).
device_authorization = back_channel_view(_device_authorization)


# ----------------------------------------------------------------------------- the person's side


class UserCodeForm(forms.Form):
    user_code = forms.CharField(
        label=_("Code shown on your device"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": "XXXX-XXXX",
            }
        ),
    )


def _refused(request: HttpRequest) -> HttpResponse:
    """Too many wrong codes from this address: a clear refusal (RFC 8628 §5.1)."""
    return render(
        request, "oauth2_provider/device/refused.html", status=HTTPStatus.TOO_MANY_REQUESTS
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def enter_code(request: HttpRequest) -> HttpResponse:
    """GET/POST /device: the person types (or confirms the pre-filled) user code."""
    if request.method == "POST":
        if not device_flow.may_try_user_code(request):
            return _refused(request)
        form = UserCodeForm(request.POST)
        if form.is_valid():
            try:
                device = device_flow.enter_user_code(
                    user_code=form.cleaned_data["user_code"], request=request
                )
            except device_flow.UserCodeRefused as refused:
                form.add_error("user_code", REFUSALS.get(refused.reason, WRONG_CODE))
            else:
                request.session[SESSION_KEY] = device.pk
                return redirect("oauth2_provider:device-confirm")
    else:
        prefilled = request.GET.get("user_code", "")
        code = device_flow.normalize_user_code(prefilled)
        form = UserCodeForm(
            initial={"user_code": device_flow.display_user_code(code) if code else ""}
        )
    return render(request, "oauth2_provider/device/enter.html", {"form": form})


def _second_factor(request: HttpRequest, client: Any) -> HttpResponse:
    """The app requires a second factor this session has not used: allauth's MFA
    re-authentication, back here after; without a factor, how to set one up."""
    methods = get_account_adapter(request).get_reauthentication_methods(request.user)
    second_factor = [method for method in methods if method["id"].startswith("mfa_")]
    if second_factor:
        query = urlencode({"next": reverse("oauth2_provider:device-confirm")})
        return HttpResponseRedirect(f"{second_factor[0]['url']}?{query}")
    return render(
        request,
        "oauth2_provider/mfa_required.html",
        {"application": client},
        status=HTTPStatus.FORBIDDEN,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest) -> HttpResponse:
    """GET/POST /device/confirm: "was this you?", then Allow or Deny (RFC 8628 §3.3, §5.4)."""
    device = device_flow.pending_device(request.session.get(SESSION_KEY))
    if device is None:
        request.session.pop(SESSION_KEY, None)
        return render(
            request,
            "oauth2_provider/device/enter.html",
            {"form": UserCodeForm(), "notice": WRONG_CODE},
            status=HTTPStatus.BAD_REQUEST,
        )
    client = device.application
    if not may_use(user=request.user, client=client):
        # As at /o/authorize/: the no-access answer, audited; the device hears access_denied.
        record_access_denied(user=request.user, client=client, request=request)
        device_flow.deny_device(device=device, user=request.user, request=request)
        request.session.pop(SESSION_KEY, None)
        return render(
            request,
            "oauth2_provider/device/no_access.html",
            {"application": client, "owner_contact": client.owner_contact},
            status=HTTPStatus.FORBIDDEN,
        )
    if client.requires_mfa and not has_second_factor(session_binding(request).amr):
        return _second_factor(request, client)
    scopes = device.scope.split()
    if request.method == "POST":
        if "allow" in request.POST:
            if not client.is_trusted:
                grant_consent(user=request.user, client=client, scopes=scopes, request=request)
            approved = device_flow.approve_device(
                device=device,
                user=request.user,
                binding=session_binding(request),
                request=request,
            )
            outcome = "approved" if approved else "expired"
        else:
            device_flow.deny_device(device=device, user=request.user, request=request)
            outcome = "denied"
        request.session.pop(SESSION_KEY, None)
        return redirect(f"{reverse('oauth2_provider:device-done')}?{urlencode({'r': outcome})}")
    descriptions = oauth2_settings.SCOPES
    context = {
        "application": client,
        "scopes": [{"name": s, "description": descriptions.get(s, s)} for s in scopes],
        "requested_at": device.created_at,
    }
    return render(request, "oauth2_provider/device/confirm.html", context)


@never_cache
@login_required
@require_http_methods(["GET"])
def done(request: HttpRequest) -> HttpResponse:
    """GET /device/done: what happened, and that the device continues on its own."""
    outcome = request.GET.get("r")
    if outcome not in ("approved", "denied", "expired"):
        outcome = "expired"
    return render(request, "oauth2_provider/device/done.html", {"outcome": outcome})
