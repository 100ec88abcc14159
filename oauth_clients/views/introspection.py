"""Token introspection (RFC 7662): client authentication required, answers limited per client.

DOT's view lets any authenticated client (or a bearer token with an `introspection` scope) read
any token; ours reveals only the caller's own tokens unless an admin marked the caller as a
resource server (`Client.is_resource_server`). See `oauth_clients.tokens.introspect_token`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode

from oauth_clients.models import Client
from oauth_clients.tokens import introspect_token
from oauth_clients.views.token import form_problem, oauth_error


def authenticated_client(view: OAuthLibMixin, request: HttpRequest) -> Client | None:
    """The confidential client this request authenticates as (RFC 6749 §2.3.1), or None."""
    core = view.get_oauthlib_core()
    oauth_request = OAuthlibRequest(
        request.build_absolute_uri(request.path),
        http_method=request.method,
        body=urlencode(core.extract_body(request)),
        headers=core.extract_headers(request),
    )
    if not core.server.request_validator.authenticate_client(oauth_request):
        return None
    client = oauth_request.client
    return client if client.client_type == Client.CLIENT_CONFIDENTIAL else None


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
@method_decorator(never_cache, name="dispatch")
class IntrospectionView(OAuthLibMixin, View):
    """POST /o/introspect/ (RFC 7662 §2.1)."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        problem = form_problem(request)
        if problem is not None:
            return problem
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        caller = authenticated_client(self, request)
        if caller is None:
            # RFC 7662 §2.3 / RFC 6749 §5.2: 401 invalid_client.
            return oauth_error(
                "invalid_client",
                "Client authentication failed.",
                HTTPStatus.UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Basic realm="introspection"'},
            )
        token = request.POST.get("token", "")
        if not token:
            return oauth_error("invalid_request", "The token parameter is missing.")
        data = introspect_token(
            token=token, token_type_hint=request.POST.get("token_type_hint"), caller=caller
        )
        response = JsonResponse(data)
        response["Cache-Control"] = "no-store"
        return response
