"""Token introspection (RFC 7662): client authentication required, answers limited per client.

DOT's view lets any authenticated client (or a bearer token with an `introspection` scope) read
any token; ours reveals only the caller's own tokens unless an admin marked the caller as a
resource server (`Client.is_resource_server`). See `oauth_clients.oidc.tokens.introspect_token`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.generic import View
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode

from oauth_clients.client_cache import get_client
from oauth_clients.models import Client
from oauth_clients.oidc.client_assertion import assertion_client_id
from oauth_clients.oidc.jwt_access import introspect_jwt, looks_like_jwt
from oauth_clients.oidc.tokens import introspect_token, load_caller_with_token, plausible_client_id
from oauth_clients.oidc.views.token import back_channel_view, form_problem, oauth_error

# RFC 6749 §2.3.1 (a secret) and RFC 7523 §2.2 (`private_key_jwt`: a signed assertion).
BODY_CREDENTIALS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")


def client_auth_request(request: HttpRequest) -> OAuthlibRequest:
    """An oauthlib request carrying only what client authentication reads (RFC 6749 §2.3.1):
    the Authorization header and the body's `client_id` and `client_secret` (or client
    assertion).

    DOT's full request copies every header and parameter (~7 % of an introspection's CPU);
    `authenticate_client` reads these three, so it decides exactly as it would there. No
    audit row is written from introspection, so the other headers are not needed either.
    """
    headers = {}
    authorization = request.META.get("HTTP_AUTHORIZATION")
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    credentials = [(name, request.POST[name]) for name in BODY_CREDENTIALS if name in request.POST]
    return OAuthlibRequest(
        request.path, http_method=request.method, body=urlencode(credentials), headers=headers
    )


def claimed_client_id(validator: Any, oauth_request: OAuthlibRequest) -> str | None:
    """The client id the request claims (Basic first, then the body), before any check."""
    basic = validator._basic_credentials(oauth_request)
    client_id = basic[0] if basic is not None else oauth_request.client_id
    if not client_id:
        client_id = assertion_client_id(getattr(oauth_request, "client_assertion", None))
    # Never looked up (`_load_application` refuses them too): not a client id.
    return client_id if client_id and plausible_client_id(client_id) else None


def authenticate(validator: Any, oauth_request: OAuthlibRequest, client: Client) -> bool:
    """The validator's own client authentication (constant-time secret check, rotation grace,
    disabled clients refused) of the client row already read, confidential clients only."""
    oauth_request.client = client
    if not validator.authenticate_client(oauth_request):
        return False
    return client.client_type == Client.CLIENT_CONFIDENTIAL


class IntrospectionView(OAuthLibMixin, View):
    """POST /o/introspect/ (RFC 7662 §2.1)."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # CSRF-exempt, no login required, never cached: decorated once (`back_channel_view`).
        return back_channel_view(super().as_view(**initkwargs))

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        problem = form_problem(request)
        if problem is not None:
            return problem
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        validator = self.get_oauthlib_core().server.request_validator
        oauth_request = client_auth_request(request)
        client_id = claimed_client_id(validator, oauth_request)
        token = request.POST.get("token", "")
        hint = request.POST.get("token_type_hint")
        lookup = None
        if client_id is not None and token and not looks_like_jwt(token):
            # The caller, as fresh as the database, then the token: one prepared query each.
            lookup = load_caller_with_token(client_id=client_id, token=token, token_type_hint=hint)
            caller = lookup.client if lookup is not None else None
        else:
            caller = get_client(client_id) if client_id is not None else None
        if caller is None or not authenticate(validator, oauth_request, caller):
            # RFC 7662 §2.3 / RFC 6749 §5.2: 401 invalid_client.
            return oauth_error(
                "invalid_client",
                "Client authentication failed.",
                HTTPStatus.UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Basic realm="introspection"'},
            )
        if not token:
            return oauth_error("invalid_request", "The token parameter is missing.")
        if looks_like_jwt(token):
            # RFC 9068: judged from the token itself (`jwt_access.introspect_jwt`).
            return JsonResponse(introspect_jwt(token=token, caller=caller))
        data = introspect_token(
            token=token,
            token_type_hint=hint,
            caller=caller,
            looked_up=(lookup.token_kind, lookup.found) if lookup is not None else None,
        )
        # RFC 7662 §2.2's no-store comes with the never-cache headers (`back_channel_view`).
        return JsonResponse(data)
