"""The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): DOT's view with our policy.

Order of work for every request, GET or POST (OIDC Core §3.1.2.1 requires both):
1. parse: oversize parameters get the branded error page;
2. validate client and redirect URI first (oauthlib via `IdPOAuthLibCore`): anything wrong with
   them gets the branded 400 page and no redirect (RFC 6749 §4.1.2.1); every later error goes to
   the validated redirect URI with `state` and `iss` (RFC 9207);
3. sign-in: anonymous → login page; `prompt=login` or an exceeded `max_age` → allauth's
   re-authentication, after which the request continues;
4. access: a person the app is not open to (`oauth_clients.access.may_use`) gets the
   no-access page, whose "Back to the app" posts back here and only then sends the app
   `access_denied` (no code, no consent);
5. consent: trusted clients and remembered consent go straight through; otherwise the consent
   screen, whose Allow / Deny posts back to this endpoint with the same request.

A pushed authorization request (RFC 9126 §4) arrives as `client_id` + `request_uri` (RFC 9126
§2.2's URN; another `request_uri` is a request object by reference, refused): before
step 2 its parameters are taken from the PAR store once, for that client only, and kept in
this browser's session (`oauth_clients.oidc.pushed`); every step then works on them, the
browser's URLs carry only the reference, and the answer to the app ends its use. A reference
that is unknown, expired, used or another client's gets the error page: the redirect URI is in
the pushed request, so there is none to trust (RFC 9126 §4, RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from allauth.account.adapter import get_adapter as get_account_adapter
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib import oauth2

from accounts.mfa_policy import has_enrolled_second_factor
from accounts.sessions import has_second_factor, session_binding
from oauth_clients.access import may_use
from oauth_clients.models import Client
from oauth_clients.oidc.app_access import record_access_denied
from oauth_clients.oidc.backend import (
    authorization_parameters,
    max_age_exceeded,
    parse_max_age,
    requested_acr_values,
)
from oauth_clients.oidc.consent import (
    consent_covers,
    grant_consent,
    mark_consent_used,
    record_consent_denied,
)
from oauth_clients.oidc.pushed import (
    PushedRequestRefused,
    SessionPushedRequest,
    looks_like_request_uri,
)
from oauth_clients.oidc.views.token import foreign_charset

# Parameters of a pushed request the sign-in page may read from its `next` URL
# (accounts/signin_request.py, idp/locale.py): shown as hints, never used as the request.
PUSHED_DISPLAY_HINTS = ("login_hint", "ui_locales")
# Longest value we accept for one parameter: ID token hints and `claims` fit easily; a 200 kB
# `state` is an attack on the redirect, the login round trip and our logs.
MAX_PARAMETER_LENGTH = 8192
ERROR_MESSAGES = {
    "client": _("This app is not registered here, or it has been disabled."),
    "redirect_uri": _("The app asked to send you back to an address it has not registered."),
    "request": _("The app sent a sign-in request that cannot be processed."),
}


def csrf_rejection(request: HttpRequest) -> HttpResponseBase | None:
    """Django's CSRF check for a view that is csrf_exempt because third parties POST to it
    (OIDC Core §3.1.2.1, RP-Initiated Logout §2); our own forms on it still need the token."""

    def protected_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    return CsrfViewMiddleware(protected_view).process_view(request, protected_view, (), {})


def user_message(error: oauth2.OAuth2Error) -> str:
    """What the user reads on the error page (the protocol detail is shown below it)."""
    if isinstance(error, oauth2.InvalidClientIdError | oauth2.MissingClientIdError):
        return str(ERROR_MESSAGES["client"])
    if isinstance(
        error,
        oauth2.MismatchingRedirectURIError
        | oauth2.MissingRedirectURIError
        | oauth2.InvalidRedirectURIError,
    ):
        return str(ERROR_MESSAGES["redirect_uri"])
    return str(ERROR_MESSAGES["request"])


@method_decorator(csrf_exempt, name="dispatch")  # an RP may POST the request; our form is checked
@method_decorator(login_not_required, name="dispatch")
def with_issuer(uri: str, issuer: str) -> str:
    """RFC 9207 §2: the response's `iss`, in the query (the only response mode offered); an
    `iss` the registered redirect URI already carried is dropped, so there is exactly one."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", issuer)])))


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(AuthorizationView):
    """Authorization code flow only; sign-in, re-authentication and consent on our pages."""

    http_method_names = ["get", "post"]
    template_name = "oauth2_provider/authorize.html"
    error_template_name = "oauth2_provider/authorize_error.html"
    mfa_template_name = "oauth2_provider/mfa_required.html"
    no_access_template_name = "oauth2_provider/no_access.html"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # Not DOT's LoginRequiredMixin first: the client and redirect URI are checked before
        # anyone is sent anywhere, the sign-in page included.
        self.oauth2_data: dict[str, Any] = {}
        self.pushed: SessionPushedRequest | None = None
        return View.dispatch(self, request, *args, **kwargs)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return self.authorize(request)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if foreign_charset(request):
            # RFC 6749 Appendix B: the form body is UTF-8. Refused before it is read, on the
            # error page: nothing is validated yet, so nothing is redirected (§4.1.2.1).
            return self.render_error(
                str(ERROR_MESSAGES["request"]),
                "The request body must be UTF-8 encoded.",
                status=HTTPStatus.BAD_REQUEST,
            )
        return self.authorize(request)

    # --- the flow

    def authorize(self, request: HttpRequest) -> HttpResponseBase:
        params = authorization_parameters(request)
        if any(len(value) > MAX_PARAMETER_LENGTH for _key, value in params):
            return self.render_error(
                str(ERROR_MESSAGES["request"]),
                "A request parameter is too long.",
                status=HTTPStatus.BAD_REQUEST,
            )
        # RFC 9126 §2.2's URN: a pushed request. Any other `request_uri` (a request object by
        # reference, OIDC Core §6.2) is validated as a plain request and refused by the backend.
        if any(key == "request_uri" and looks_like_request_uri(value) for key, value in params):
            refused = self.take_pushed_request(request, params)
            if refused is not None:
                return refused
            assert self.pushed is not None  # for the type checker: taken when not refused
            params = self.pushed.parameters
        decision = self.consent_decision(request)
        if decision is not None:
            # Only our own consent form carries a decision: it must carry our CSRF token too.
            failure = csrf_rejection(request)
            if failure is not None:
                return failure
        try:
            scopes, credentials = self.validate_authorization_request(request)
        except OAuthToolkitError as error:
            return self.error_response(error, application=None)

        client: Client = credentials["client"]
        if not request.user.is_authenticated:
            return self.sign_in(params)
        if self.needs_reauthentication(request, params):
            return self.reauthenticate(params)
        # Before the second factor and consent: neither would let this person in.
        if decision == "back":
            return self.back_to_app(client, credentials)
        if not may_use(user=request.user, client=client):
            record_access_denied(user=request.user, client=client, request=request)
            return self.render_no_access(request, client, params)
        # Client.requires_mfa insists; `acr_values` is voluntary (OIDC Core §5.5.1.1): it steps
        # up only a user who has a second factor, and the ID token's `acr` says what was used.
        wants_second_factor = client.requires_mfa or (
            bool(requested_acr_values(dict(params).get("acr_values")))
            and has_enrolled_second_factor(request.user)
        )
        if wants_second_factor and not has_second_factor(session_binding(request).amr):
            return self.require_second_factor(request, client, params)

        prompt = self.prompt_values(params)
        if decision == "deny":
            record_consent_denied(user=request.user, client=client, scopes=scopes, request=request)
            denied = oauth2.AccessDeniedError(state=credentials.get("state"))
            return self.error_response(
                OAuthToolkitError(error=denied, redirect_uri=credentials["redirect_uri"]), client
            )
        if decision == "allow":
            if not client.is_trusted:
                grant_consent(user=request.user, client=client, scopes=scopes, request=request)
            return self.issue_code(request, client, scopes, credentials)
        if "consent" not in prompt and consent_covers(
            user=request.user, client=client, scopes=scopes
        ):
            if not client.is_trusted:
                mark_consent_used(user=request.user, client=client)
            return self.issue_code(request, client, scopes, credentials)
        # prompt=none never gets here: the validator answered consent_required already.
        return self.render_consent(request, client, scopes, params)

    def take_pushed_request(
        self, request: HttpRequest, params: list[tuple[str, str]]
    ) -> HttpResponse | None:
        """RFC 9126 §4: the pushed request `request_uri` names, for `client_id` (both once);
        the error page when there is none. Any other parameter of the URL is ignored."""
        client_ids = [value for key, value in params if key == "client_id"]
        request_uris = [value for key, value in params if key == "request_uri"]
        if len(client_ids) != 1 or len(request_uris) != 1:
            return self.render_error(
                str(ERROR_MESSAGES["request"]),
                "A pushed request needs exactly one client_id and one request_uri.",
                status=HTTPStatus.BAD_REQUEST,
            )
        try:
            self.pushed = SessionPushedRequest.resume_or_take(
                session=request.session, request_uri=request_uris[0], client_id=client_ids[0]
            )
        except PushedRequestRefused as refused:
            return self.render_error(
                str(ERROR_MESSAGES["request"]), refused.reason, status=HTTPStatus.BAD_REQUEST
            )
        return None

    def validate_authorization_request(self, request: HttpRequest) -> tuple[list[str], dict]:
        pushed = self.pushed.parameters if self.pushed is not None else None
        return self.get_oauthlib_core().validate_authorization_request(request, pushed=pushed)

    def create_authorization_response(
        self, request: HttpRequest, scopes: str, credentials: dict, allow: bool
    ) -> tuple[Any, ...]:
        pushed = self.pushed.parameters if self.pushed is not None else None
        return self.get_oauthlib_core().create_authorization_response(
            request, scopes.split(" ") if scopes else [], credentials, allow, pushed=pushed
        )

    def issue_code(
        self, request: HttpRequest, client: Client, scopes: list[str], credentials: dict
    ) -> HttpResponse:
        try:
            uri, _headers, _body, _status = self.create_authorization_response(
                request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
            )
        except OAuthToolkitError as error:
            return self.error_response(error, client)
        return self.redirect(uri, client)

    # --- sign-in and re-authentication (OIDC Core §3.1.2.3)

    @staticmethod
    def consent_decision(request: HttpRequest) -> str | None:
        if request.method != "POST":
            return None
        if "back" in request.POST:
            return "back"
        if "deny" in request.POST:
            return "deny"
        if "allow" in request.POST:
            return "allow"
        return None

    @staticmethod
    def prompt_values(params: list[tuple[str, str]]) -> set[str]:
        return {value for key, raw in params if key == "prompt" for value in raw.split()}

    def request_url(self, params: list[tuple[str, str]], *, sign_in: bool = False) -> str:
        """This request's URL at this endpoint; a pushed request's carries only its reference,
        its parameters staying in the session (on the way to a sign-in page, with the hints
        that page shows)."""
        if self.pushed is None:
            return f"{reverse('oauth2_provider:authorize')}?{urlencode(params)}"
        hints = [(k, v) for k, v in params if sign_in and k in PUSHED_DISPLAY_HINTS]
        query = urlencode([*self.pushed.url_parameters, *hints])
        return f"{reverse('oauth2_provider:authorize')}?{query}"

    def continue_url(self, params: list[tuple[str, str]]) -> str:
        """This request without what a fresh authentication satisfies (prompt=login, max_age)."""
        kept: list[tuple[str, str]] = []
        for key, value in params:
            if key == "max_age":
                continue
            if key == "prompt":
                value = " ".join(v for v in value.split() if v != "login")
                if not value:
                    continue
            kept.append((key, value))
        if self.pushed is not None:
            self.pushed.keep(kept)
        return self.request_url(kept, sign_in=True)

    def sign_in(self, params: list[tuple[str, str]]) -> HttpResponse:
        return redirect_to_login(self.continue_url(params), resolve_url(settings.LOGIN_URL), "next")

    def needs_reauthentication(self, request: HttpRequest, params: list[tuple[str, str]]) -> bool:
        if "login" in self.prompt_values(params):
            return True
        max_age = parse_max_age(dict(params).get("max_age"))  # validated by the backend
        auth_time = session_binding(request).auth_time
        return max_age_exceeded(max_age=max_age, auth_time=auth_time, now=int(time.time()))

    def reauthenticate(self, params: list[tuple[str, str]]) -> HttpResponse:
        # allauth's login page bounces a signed-in user; its re-authentication asks again.
        query = urlencode({"next": self.continue_url(params)})
        return HttpResponseRedirect(f"{reverse('account_reauthenticate')}?{query}")

    def require_second_factor(
        self, request: HttpRequest, client: Client, params: list[tuple[str, str]]
    ) -> HttpResponse:
        """Client.requires_mfa: a second factor in this session, through allauth's MFA
        re-authentication; a user without one is told to set it up (nothing goes to the app)."""
        methods = get_account_adapter(request).get_reauthentication_methods(request.user)
        second_factor = [method for method in methods if method["id"].startswith("mfa_")]
        if second_factor:
            query = urlencode({"next": self.continue_url(params)})
            return HttpResponseRedirect(f"{second_factor[0]['url']}?{query}")
        context = {"application": client}
        return render(request, self.mfa_template_name, context, status=HTTPStatus.FORBIDDEN)

    def back_to_app(self, client: Client, credentials: dict) -> HttpResponse:
        """The no-access page's "Back to the app", chosen by the person: the app learns that
        the sign-in did not happen (RFC 6749 §4.1.2.1 `access_denied`, with `state`, and `iss`
        from `redirect`). Nothing is issued or remembered."""
        denied = oauth2.AccessDeniedError(state=credentials.get("state"))
        return self.error_response(
            OAuthToolkitError(error=denied, redirect_uri=credentials["redirect_uri"]), client
        )

    # --- rendering

    def render_no_access(
        self, request: HttpRequest, client: Client, params: list[tuple[str, str]]
    ) -> HttpResponse:
        """The person may not use the app: say so, and whom to ask (the app's owner, else the
        company's support page from the branding, else their administrator)."""
        context = {
            "application": client,
            "owner_contact": client.owner_contact,
            "form_action": self.request_url(params),
        }
        return render(request, self.no_access_template_name, context, status=HTTPStatus.FORBIDDEN)

    def render_consent(
        self,
        request: HttpRequest,
        client: Client,
        scopes: list[str],
        params: list[tuple[str, str]],
    ) -> HttpResponse:
        descriptions = oauth2_settings.SCOPES
        context = {
            "application": client,
            "scopes": [
                {"name": scope, "description": descriptions.get(scope, scope)} for scope in scopes
            ],
            "form_action": self.request_url(params),
        }
        return render(request, self.template_name, context)

    def render_error(self, message: str, description: str, *, status: int) -> HttpResponse:
        context = {"message": message, "description": description}
        return render(self.request, self.error_template_name, context, status=status)

    def error_response(self, error: OAuthToolkitError, application: Any, **kwargs: Any):
        redirect, info = OAuthLibMixin.error_response(self, error, **kwargs)
        oauthlib_error = info["error"]
        if redirect and oauthlib_error.redirect_uri:
            return self.redirect(info["url"], application)
        # RFC 6749 §4.1.2.1: a bad client or redirect URI is told to the user, never redirected.
        return self.render_error(
            user_message(oauthlib_error),
            oauthlib_error.description,
            status=HTTPStatus.BAD_REQUEST,
        )

    def redirect(self, redirect_to: str, application: Client | None) -> HttpResponse:
        if self.pushed is not None:
            # The app has its answer: the pushed request is spent (RFC 9126 §4).
            self.pushed.finish()
        # RFC 9207: `iss` on every authorization response, errors included.
        issuer = oauth2_settings.oauth2_authorization_server_issuer(self.request)
        return super().redirect(with_issuer(redirect_to, issuer), application)
