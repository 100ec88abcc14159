"""RP-initiated logout endpoint (OpenID Connect RP-Initiated Logout 1.0 §2, §3): DOT's view, ours.

What differs from DOT: the `id_token_hint` is verified against every published key (a rotated
key's hints still work); `post_logout_redirect_uri` must equal one registered for the client;
the request works by GET and POST; the session ends through allauth and only the calling
client's tokens of this session are revoked (`oauth_clients.oidc.logout`).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    QueryDict,
)
from django.shortcuts import render, resolve_url
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.compat import login_not_required
from oauth2_provider.exceptions import (
    ClientIdMissmatch,
    InvalidIDTokenError,
    InvalidOIDCClientError,
    InvalidOIDCRedirectURIError,
    InvalidRequestFatalError,
    OIDCError,
)
from oauth2_provider.http import OAuth2ResponseRedirect
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import RPInitiatedLogoutView
from oauthlib.common import add_params_to_uri

from accounts.sessions import get_sid
from oauth_clients.models import Client
from oauth_clients.oidc.authorization_policy import redirect_uri_registered
from oauth_clients.oidc.frontchannel import logged_out_url
from oauth_clients.oidc.logout import (
    LogoutHint,
    end_session,
    hint_matches_session,
    read_id_token_hint,
)
from oauth_clients.oidc.views.authorize import csrf_rejection
from oauth_clients.oidc.views.token import foreign_charset

MAX_PARAMETER_LENGTH = 8192
MAX_HINT_LENGTH = 16_384
REQUEST_FIELDS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")


@method_decorator(csrf_exempt, name="dispatch")  # an RP may POST; our confirm form is checked
@method_decorator(login_not_required, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class LogoutView(RPInitiatedLogoutView):
    http_method_names = ["get", "post"]
    template_name = "oauth2_provider/logout_confirm.html"
    error_template_name = "oauth2_provider/logout_error.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.logout_request(request.GET, decision=None)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if foreign_charset(request):
            # RFC 6749 Appendix B: the form body is UTF-8; refused before it is read.
            return self.error_response(
                InvalidRequestFatalError("The request body must be UTF-8 encoded.")
            )
        decision = next((name for name in ("allow", "cancel") if name in request.POST), None)
        if decision is not None:
            # Only our confirmation form carries a decision: it must carry our CSRF token too.
            failure = csrf_rejection(request)
            if failure is not None:
                return failure
        return self.logout_request(request.POST, decision=decision)

    def logout_request(self, params: QueryDict, *, decision: str | None) -> HttpResponse:
        values = {name: params.get(name) or None for name in REQUEST_FIELDS}
        too_long = any(
            len(value) > (MAX_HINT_LENGTH if name == "id_token_hint" else MAX_PARAMETER_LENGTH)
            for name, value in values.items()
            if value
        )
        if too_long:
            return self.error_response(InvalidIDTokenError("A logout parameter is too long."))
        if any("\x00" in value for value in values.values() if value):
            return self.error_response(InvalidIDTokenError("Parameters must not contain NUL."))
        try:
            client, hint = self.validate(**values)
        except OIDCError as error:
            return self.error_response(error)
        if decision == "cancel":
            return HttpResponseRedirect(resolve_url(settings.LOGIN_REDIRECT_URL))
        if decision == "allow" or not self.must_prompt(hint):
            return self.do_logout(client, values["post_logout_redirect_uri"], values["state"])
        context = {"application": client, "fields": {k: v for k, v in values.items() if v}}
        return render(self.request, self.template_name, context)

    # --- validation (RP-Initiated Logout §2, §3)

    def validate(
        self,
        *,
        id_token_hint: str | None,
        client_id: str | None,
        post_logout_redirect_uri: str | None,
        state: str | None,
    ) -> tuple[Client | None, LogoutHint | None]:
        hint = None
        if id_token_hint:
            issuer = oauth2_settings.oidc_issuer(self.request)
            hint = read_id_token_hint(token=id_token_hint, issuer=issuer)
            if hint is None:
                raise InvalidIDTokenError()
            if client_id and client_id != hint.client.client_id:
                raise ClientIdMissmatch()
        client = hint.client if hint else None
        if client is None and client_id:
            client = self.client_by_id(client_id)
        if client is not None and not client.is_active:
            # A disabled app vouches for no URI any more (its domain may have lapsed): the
            # session still ends, on our own signed-out page, and its redirect is never followed.
            return None, hint
        if post_logout_redirect_uri:
            if client is None:
                raise InvalidOIDCClientError()
            # §3: exactly one of the URIs registered for this client (simple string comparison).
            # A native app keeps RFC 8252 §7.3's any-port loopback match here too: its loopback
            # listener gets an ephemeral port for logout as for sign-in, and this redirect
            # carries only `state`, no credential.
            if not redirect_uri_registered(
                post_logout_redirect_uri,
                client.post_logout_redirect_uris.split(),
                kind=client.kind,
            ):
                raise InvalidOIDCRedirectURIError()
        return client, hint

    @staticmethod
    def client_by_id(client_id: str) -> Client:
        try:
            client = Client.objects.filter(client_id=client_id).first()
        except ValueError:  # a NUL byte on PostgreSQL
            client = None
        if client is None:
            raise InvalidOIDCClientError()
        return client

    def must_prompt(self, token_user: Any) -> bool:
        """§2: ask unless a valid hint names this signed-in user's current session."""
        user = self.request.user
        if not user.is_authenticated:
            return False  # no IdP session to end
        hint: LogoutHint | None = token_user
        if hint is None:
            return True
        return not hint_matches_session(hint=hint, user=user, sid=get_sid(self.request))

    # --- the logout itself

    def do_logout(
        self,
        application: Client | None = None,
        post_logout_redirect_uri: str | None = None,
        state: str | None = None,
        token_user: Any = None,
    ) -> HttpResponse:
        target = resolve_url(settings.LOGOUT_REDIRECT_URL)
        if post_logout_redirect_uri and application is not None:
            target = post_logout_redirect_uri
            if state:
                target = add_params_to_uri(target, [("state", state)])
        # Front-Channel Logout §3: apps of this session that asked for it are signed out by our
        # signed-out page on the way (found before the session's tokens are revoked).
        signed_out_page = logged_out_url(sid=get_sid(self.request), next_url=target)
        end_session(request=self.request, client=application, sid=get_sid(self.request))
        if signed_out_page:
            return HttpResponseRedirect(signed_out_page)
        if post_logout_redirect_uri and application is not None:
            return OAuth2ResponseRedirect(target, application.get_allowed_schemes())
        return HttpResponseRedirect(target)

    def error_response(self, error: OIDCError) -> HttpResponse:
        context = {"error": error.error, "description": error.description}
        return render(
            self.request, self.error_template_name, context, status=HTTPStatus.BAD_REQUEST
        )
