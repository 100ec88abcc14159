"""Token endpoint (RFC 6749 §3.2): DOT's view behind our request checks.

Also home of the two helpers every back-channel endpoint (token, revocation, introspection,
userinfo) uses so hostile input gets the protocol's own error (RFC 6749 §5.2) and never a 500:
`oauth_error` and `form_problem`; and of `spa_cors`, the CORS of token, revocation and userinfo.
"""

from __future__ import annotations

import functools
import time
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import add_never_cache_headers as django_add_never_cache_headers
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider import views as dot_views
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from idp.metrics import observe_token_issued
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from oauth_clients.oidc.dpop import NONCE_HEADER as DPOP_NONCE_HEADER
from oauth_clients.oidc.dpop import current_nonce
from oauth_clients.oidc.jwt_access import generate_access_token, lifetime_seconds
from oauth_clients.oidc.token_policy import resolve_token_target
from oauth_clients.oidc.tokens import access_token_lifetime
from oauth_clients.selectors import spa_origin_registered

# No legitimate parameter at these endpoints comes near this: codes, tokens and secrets are
# < 100 characters, a PKCE verifier ≤ 128 (RFC 7636 §4.1), a redirect URI a few hundred.
MAX_PARAMETER_LENGTH = 4096
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# RFC 9700 §2.1.2, §2.4: no implicit, no password. RFC 8628: the device code grant.
SUPPORTED_GRANT_TYPES = frozenset(
    {"authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT}
)
# What a single-page app's fetch sends (client authentication or a bearer token, a form body,
# a DPoP proof: RFC 9449), and what it may read of the answer (a DPoP server nonce, §8).
CORS_ALLOW_HEADERS = "Authorization, Content-Type, DPoP"
CORS_EXPOSE_HEADERS = "DPoP-Nonce"
# Seconds a browser may reuse a preflight: short, so a disabled app loses access soon.
CORS_MAX_AGE = "600"


def oauth_error(
    error: str,
    description: str,
    status: int = HTTPStatus.BAD_REQUEST,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """RFC 6749 §5.2 error response: JSON, never cached."""
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


@functools.lru_cache(maxsize=64)
def _never_cache_control(existing: str) -> str:
    """What Django's `add_never_cache_headers` makes of this Cache-Control value (its merge
    depends on nothing else), computed once per distinct value."""
    scratch = HttpResponse(headers={"Cache-Control": existing} if existing else {})
    django_add_never_cache_headers(scratch)
    return scratch.headers["Cache-Control"]


def add_never_cache_headers(response: HttpResponse) -> None:
    """Django's `add_never_cache_headers`, without parsing and re-sorting Cache-Control on
    every response (~30 µs per response: ~5 % of a userinfo request's CPU, ~3 % of a token
    grant's, whose oauthlib answer already says `no-store`); a response that already has
    Expires gets Django's own function."""
    if response.has_header("Expires"):
        django_add_never_cache_headers(response)
        return
    response.headers["Expires"] = http_date(time.time())  # Django: now + max(-1, 0) s
    response.headers["Cache-Control"] = _never_cache_control(
        response.headers.get("Cache-Control", "")
    )


def back_channel_view(view: Any) -> Any:
    """`csrf_exempt`, `login_not_required` and `never_cache` applied once to a view function.

    The same as `method_decorator(...)` on `dispatch`, which rebuilds the decorated method on
    every request (`update_wrapper`, a partial, three coroutine checks: ~5 % of a userinfo
    request's CPU under cProfile). Used by the views whose `as_view` returns it.
    """

    @wraps(view)
    def never_cached(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        return response

    return csrf_exempt(login_not_required(never_cached))


def foreign_charset(request: HttpRequest) -> bool:
    """Whether the request declares a body charset other than UTF-8 (any case), known or not.

    RFC 6749 Appendix B: a form-urlencoded body is UTF-8. Django raises BadRequest when it
    reads such a body in another charset (a 500 page in debug mode, an HTML 400 otherwise)
    and decodes one in a charset it does not know as UTF-8: both refused before the body is read.
    """
    charset = (request.content_params or {}).get("charset")
    return charset is not None and charset.lower() != "utf-8"


def spa_cors(view: Any, *, methods: tuple[str, ...]) -> Any:
    """CORS (Fetch standard) for the registered origins of single-page apps, and no other.

    A single-page app (a public client: the code flow with PKCE, RFC 9700 §2.1.1) redeems its
    code, refreshes, revokes and reads userinfo from the browser, so its origins get these
    endpoints' answers; any other origin gets no CORS header and the browser keeps the answer
    from the page. The preflight (OPTIONS) is answered here, 204 either
    way. Never `*`, never `Access-Control-Allow-Credentials`: the caller authenticates with a
    secret, a PKCE verifier or a bearer token, never a cookie. A request without an Origin
    header (every server-side client) costs nothing more; one with an Origin costs one query.
    """
    allowed_methods = ", ".join(methods)
    allow = ", ".join((*methods, "OPTIONS"))

    @wraps(view)
    def with_cors(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=HTTPStatus.NO_CONTENT, headers={"Allow": allow})
        else:
            response = view(request, *args, **kwargs)
        origin = request.META.get("HTTP_ORIGIN")
        if origin is None:
            return response
        # The answer depends on the Origin (Fetch standard, "CORS protocol and HTTP caches").
        patch_vary_headers(response, ("Origin",))
        if not spa_origin_registered(origin):
            # oauthlib adds its own header to a successful grant (the client's
            # `allowed_origins`): this check alone decides.
            del response["Access-Control-Allow-Origin"]
            return response
        response["Access-Control-Allow-Origin"] = origin
        if response.has_header(DPOP_NONCE_HEADER):
            response["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
        if request.method == "OPTIONS":
            response["Access-Control-Allow-Methods"] = allowed_methods
            response["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response["Access-Control-Max-Age"] = CORS_MAX_AGE
        return response

    return with_cors


def form_problem(request: HttpRequest, *, methods: tuple[str, ...] = ("POST",)) -> Any:
    """The error response for a malformed back-channel request, or None when it is well formed.

    RFC 6749 §3.2 (POST), §4.1.3 (form-urlencoded body), Appendix B (UTF-8), §3.1/§3.2 (no
    repeated parameter); Django's upload limits (`DATA_UPLOAD_MAX_MEMORY_SIZE`,
    `…_NUMBER_FIELDS`) answered as OAuth errors, and NUL bytes or absurdly long values refused
    before they reach the database.
    """
    if request.method not in methods:
        return oauth_error(
            "invalid_request",
            f"This endpoint accepts {' or '.join(methods)} only.",
            HTTPStatus.METHOD_NOT_ALLOWED,
            headers={"Allow": ", ".join(methods)},
        )
    if request.method != "POST":
        params = request.GET
    else:
        content_type = request.content_type or ""
        if content_type != FORM_CONTENT_TYPE:
            return oauth_error("invalid_request", f"The request body must be {FORM_CONTENT_TYPE}.")
        if foreign_charset(request):
            return oauth_error("invalid_request", "The request body must be UTF-8 encoded.")
        try:
            params = request.POST
        except RequestDataTooBig:
            return oauth_error(
                "invalid_request",
                "The request body is too large.",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        except TooManyFieldsSent:
            return oauth_error("invalid_request", "The request has too many parameters.")
    for name, values in params.lists():
        if len(values) > 1:
            return oauth_error("invalid_request", f"The parameter {name!r:.40} is repeated.")
        value = values[0]
        if len(value) > MAX_PARAMETER_LENGTH or len(name) > MAX_PARAMETER_LENGTH:
            return oauth_error("invalid_request", "A parameter is too long.")
        if "\x00" in value or "\x00" in name:
            return oauth_error("invalid_request", "A parameter contains a NUL byte.")
    return None


def oauthlib_response(headers: dict[str, str], body: str | None, status: int) -> HttpResponse:
    """An oauthlib (headers, body, status) triple as a Django response, always typed JSON, and
    with the Basic challenge RFC 6749 §5.2 asks for when client authentication failed (oauthlib
    would send a Bearer one)."""
    response = HttpResponse(content=body or "", status=status)
    for name, value in headers.items():
        response[name] = value
    if body and "Content-Type" not in headers:
        response["Content-Type"] = "application/json"
    if status == HTTPStatus.UNAUTHORIZED:
        response["WWW-Authenticate"] = 'Basic realm="oauth", charset="UTF-8"'
    return response


def _access_token_expires_in(request: Any) -> int:
    # oauthlib asks per request, first thing when it builds the token: the resources resolve
    # here (an API's JWT has the API's lifetime, RFC 9068); otherwise the client (already
    # authenticated) may have its own lifetime.
    api = resolve_token_target(request)
    if api is not None:
        return lifetime_seconds(api)
    return access_token_lifetime(getattr(request, "client", None))


class TokenView(dot_views.TokenView):
    """POST /o/token/: authorization code, refresh token, client credentials and device code
    (RFC 8628 §3.4, oauth_clients/oidc/device_grant.py) grants."""

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Our `dispatch` replaces DOT's decorated one, so the decorators are applied again (a
        # client posts no CSRF token and has no session, RFC 6749 §3.2), once
        # (`back_channel_view`); single-page apps redeem their codes from the browser
        # (`spa_cors`).
        return back_channel_view(spa_cors(super().as_view(**initkwargs), methods=("POST",)))

    @classmethod
    def get_server(cls) -> Any:
        kwargs = {
            **oauth2_settings.server_kwargs,
            "token_expires_in": _access_token_expires_in,
            # An opaque token, or an RFC 9068 JWT when the request names an API.
            "token_generator": generate_access_token,
        }
        return cls.get_server_class()(cls.get_validator_class()(), **kwargs)

    @classmethod
    def get_oauthlib_core(cls) -> Any:
        # DOT caches the core on whichever class asks first; ours must not reuse DOT's
        # TokenView's (built without our per-client lifetime).
        if "_oauthlib_core" not in cls.__dict__ or oauth2_settings.ALWAYS_RELOAD_OAUTHLIB_CORE:
            cls._oauthlib_core = cls.get_oauthlib_backend_class()(cls.get_server())
        return cls._oauthlib_core

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        problem = form_problem(request)
        if problem is not None:
            return problem
        if request.POST.get("grant_type") not in SUPPORTED_GRANT_TYPES:
            # Refused before oauthlib: its password grant would check a user's password (an
            # oracle outside the sign-in rate limits).
            return oauth_error(
                "unsupported_grant_type",
                "Supported grant types: " + ", ".join(sorted(SUPPORTED_GRANT_TYPES)) + ".",
            )
        # No transaction around a grant: each write is atomic on its own, and the code exchange's
        # and the refresh rotation's are conditional (oauth_clients/oidc/store.py).
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # DOT's post re-reads the new access token to send `app_authorized` (one more query
        # per grant); nothing here listens to it, so answer oauthlib's response directly.
        grant_type = request.POST["grant_type"]
        _url, headers, body, status = self.create_token_response(request)
        if status == HTTPStatus.OK:
            observe_token_issued(grant_type)
        response = oauthlib_response(headers, body, status)
        if "HTTP_DPOP" in request.META:
            # RFC 9449 §8: the nonce for the client's next proof (required from clients that
            # must use DPoP: `TokenPolicyMixin.validate_dpop`).
            response[DPOP_NONCE_HEADER] = current_nonce()
        return response
