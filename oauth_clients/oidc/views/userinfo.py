"""UserInfo endpoint (OIDC Core §5.3) with RFC 6750 error semantics, GET and POST.

The token comes in the Authorization header (RFC 6750 §2.1) or a form body (§2.2), never the
query string (RFC 9700 §4.3.2) and never in two places at once (RFC 6750 §2). Errors: 400
`invalid_request`, 401 `invalid_token` for a missing, bad, expired or revoked token, 403
`insufficient_scope` for a token without `openid` or without a person (client credentials).
The claims come from the validator (`get_userinfo_claims` → `oauth_clients.oidc.claims`).

A DPoP-bound token (RFC 9449 §7) comes as `Authorization: DPoP <token>` with a proof of its key
in the `DPoP` header (checked here, `ath` included, before the token is read); anything else
about a bound token — the Bearer scheme, no proof, another key's proof — is a 401 with a DPoP
challenge.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.generic import View
from oauth2_provider.utils import parse_bearer_token
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OAuthlibRequest

from oauth_clients.oidc import dpop
from oauth_clients.oidc.grant_state import grant_state
from oauth_clients.oidc.views.token import back_channel_view, form_problem, spa_cors

DESCRIPTIONS = {
    "invalid_request": "The request is malformed.",
    "invalid_token": "The access token is missing, invalid, expired or revoked.",
    "insufficient_scope": "The access token does not grant the openid scope.",
    "invalid_dpop_proof": "The DPoP proof is invalid.",
}
STATUS = {
    "invalid_request": HTTPStatus.BAD_REQUEST,
    "invalid_token": HTTPStatus.UNAUTHORIZED,
    "insufficient_scope": HTTPStatus.FORBIDDEN,
    "invalid_dpop_proof": HTTPStatus.UNAUTHORIZED,
}


def bearer_error(error: str, description: str = "") -> JsonResponse:
    """RFC 6750 §3: the error in the WWW-Authenticate challenge and in a JSON body."""
    description = description or DESCRIPTIONS[error]
    challenge = f'Bearer error="{error}", error_description="{description}"'
    if error == "insufficient_scope":
        challenge += ', scope="openid"'
    response = JsonResponse(
        {"error": error, "error_description": description}, status=STATUS[error]
    )
    response["WWW-Authenticate"] = challenge
    return response


# What `accounts.audit.build_event` reads of a request: the address (allauth's, behind trusted
# proxies from X-Forwarded-For) and the user agent.
AUDIT_HEADERS = ("REMOTE_ADDR", "HTTP_X_FORWARDED_FOR", "HTTP_USER_AGENT")


def dpop_error(error: str, description: str = "") -> JsonResponse:
    """RFC 9449 §7.1: the error in a DPoP challenge (with the algorithms a proof may use)."""
    response = bearer_error(error, description)
    description = description or DESCRIPTIONS[error]
    response["WWW-Authenticate"] = (
        f'DPoP error="{error}", error_description="{description}", '
        f'algs="{" ".join(dpop.ALGORITHMS)}"'
    )
    return response


def dpop_token(header: str | None) -> str | None:
    """The token of an `Authorization: DPoP <token>` header (RFC 9449 §7.1; the scheme is
    case-insensitive), None for any other scheme."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "dpop":
        return None
    token = token.strip()
    return token if token and " " not in token else ""


class UserInfoView(OAuthLibMixin, View):
    """GET/POST /o/userinfo/. Single-page apps call it from their registered origins
    (`spa_cors`, which also answers the preflight); other origins get no CORS header."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # CSRF-exempt, no login required, never cached: decorated once (`back_channel_view`).
        view = spa_cors(super().as_view(**initkwargs), methods=("GET", "POST"))
        return back_channel_view(view)

    http_method_names = ["get", "post"]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return form_problem(request, methods=("GET", "POST"))

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._userinfo(request, body_token=None)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        body_token = None
        if request.content_type == "application/x-www-form-urlencoded":
            problem = form_problem(request)
            if problem is not None:
                return bearer_error("invalid_request", problem_description(problem))
            body_token = request.POST.get("access_token")
        return self._userinfo(request, body_token=body_token)

    def _userinfo(self, request: HttpRequest, *, body_token: str | None) -> HttpResponse:
        if "access_token" in request.GET:
            return bearer_error(
                "invalid_request", "Send the access token in the Authorization header."
            )
        header = request.headers.get("Authorization")
        if header and body_token is not None:
            return bearer_error("invalid_request", "Send the access token in one place only.")
        bound_token = dpop_token(header)
        if bound_token is not None:
            token: str | None = bound_token
            error = dpop_error
        else:
            token = parse_bearer_token(header) if header else body_token
            error = bearer_error
        if not token or "\x00" in token:
            return error("invalid_token")
        validator = self.get_oauthlib_core().server.request_validator
        # Only the headers an audit row reads (a bound token refused by the bearer check): the
        # token is already parsed, and nothing else below reads one (the bearer check and the
        # claims read the token's row; its RFC 8707 audience check reads the URI). Copying
        # every header into oauthlib's request was ~7 % of the CPU (cProfile).
        oauth_request = OAuthlibRequest(
            request.build_absolute_uri(request.path),
            http_method=request.method,
            headers={name: request.META[name] for name in AUDIT_HEADERS if name in request.META},
        )
        if bound_token is not None:
            try:
                grant_state(oauth_request).dpop_jkt = dpop.verify_proof(
                    proof=request.headers.get(dpop.HEADER),
                    method=request.method or "",
                    uri=dpop.endpoint_uri(request.path),
                    access_token=token,
                )
            except dpop.InvalidProof as refused:
                if refused.replayed:
                    dpop.record_refusal(request=request, reason=str(refused))
                return dpop_error("invalid_dpop_proof", str(refused))
        if not validator.validate_bearer_token(token, [], oauth_request):
            refused_token: Any = getattr(oauth_request, "access_token", None)
            if bound_token is None and refused_token is not None and refused_token.dpop_jkt:
                # RFC 9449 §7.2: a bound token sent as a bearer token.
                error = dpop_error
            return error("invalid_token")
        if bound_token is not None and not oauth_request.access_token.dpop_jkt:
            # The DPoP scheme claims a binding the token does not have.
            return dpop_error("invalid_token", "The access token is not bound to a DPoP key.")
        access_token = oauth_request.access_token
        scopes = access_token.scope.split()
        if access_token.user is None or "openid" not in scopes:
            return bearer_error("insufficient_scope")
        oauth_request.scopes = scopes
        claims = validator.get_userinfo_claims(oauth_request)
        if isinstance(claims, str):  # a signed UserInfo response (OIDC Core §5.3.2)
            return HttpResponse(claims, content_type="application/jwt")
        return JsonResponse(claims)


def problem_description(response: HttpResponse) -> str:
    return str(json.loads(response.content).get("error_description", ""))
