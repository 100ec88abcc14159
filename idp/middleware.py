"""Operations middleware: probes first, request id, JSON log line, metrics; machine fast path.

Order in settings.MIDDLEWARE: `ProbeMiddleware` first, `RequestLogMiddleware` second, then
Django's SecurityMiddleware, `MachineEndpointMiddleware`, and the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.contrib.auth.models import AnonymousUser
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch, get_script_prefix, resolve, reverse

from idp import health, metrics
from idp.request_log import (
    REQUEST_ID_HEADER,
    bind_request_id,
    log_request,
    request_id_for,
    unbind_request_id,
)

UNMATCHED = "<unmatched>"


class ProbeMiddleware:
    """Answers /healthz, /readyz and /metrics before anything reads the Host header.

    Kubernetes probes and Prometheus connect to the pod IP, which is not in ALLOWED_HOSTS, and
    over plain http inside the cluster: answering here, ahead of SecurityMiddleware (SSL
    redirect) and CommonMiddleware (host check), keeps them working without widening
    ALLOWED_HOSTS for every other URL. Nothing else is answered here.
    """

    VIEWS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
        "/healthz": health.healthz,
        "/readyz": health.readyz,
        "/metrics": metrics.metrics_view,
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = self.VIEWS.get(request.path_info)
        if view is not None:
            return view(request)
        return self.get_response(request)


def url_name(request: HttpRequest) -> str:
    """The URL's name with its namespace (`oauth2_provider:token`), never the raw path."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return match.view_name or UNMATCHED


class RequestLogMiddleware:
    """Request id in and out, one JSON access line, latency and error metrics per URL name."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            seconds = time.perf_counter() - started
            name = url_name(request)
            metrics.observe_request(
                view=name, method=request.method or "", status=status, seconds=seconds
            )
            log_request(request=request, status=status, duration_ms=seconds * 1000, url_name=name)
            unbind_request_id(token)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        metrics.observe_exception(view=url_name(request), exception=exception)


class MachineEndpointMiddleware:
    """Answers the machine-to-machine endpoints without the browser middleware below it.

    Why: CPU profiles under load (py-spy) put ~35% of a client-credentials
    request's CPU outside the view, in middleware that does nothing for these requests. The
    token, device authorization, revocation, introspection, userinfo, JWKS and discovery
    endpoints are called by programs with client credentials or a bearer token, never with a
    browser session, so for
    exactly their paths (resolved from their URL names, see `URL_NAMES`) this middleware calls
    the view itself and skips:

    - WhiteNoiseMiddleware: serves STATIC_URL only.
    - SessionMiddleware, AuthenticationMiddleware, allauth's AccountMiddleware and
      UserSessionsMiddleware, accounts' StaffMFAMiddleware: no cookie is read and no session
      loaded here (today AuthenticationMiddleware's lazy user, touched by the later ones, loads
      any session cookie sent along, and tags the response `Vary: Cookie`). The views take the
      client from its credentials and the person from the token; the validator's audit rows
      carry a request built from the oauthlib headers (`token_policy.audit_request`); nothing
      here uses allauth's request context; UserSessions' activity tracking is about browser
      sessions; the staff gate covers /admin/ only. `request.user` is set to AnonymousUser so
      anything that asks sees "nobody signed in" rather than an AttributeError.
    - CommonMiddleware: its host check is kept (`request.get_host()`: DisallowedHost is answered
      400, as there); APPEND_SLASH acts on 404s only, and these paths exist as written;
      PREPEND_WWW and DISALLOWED_USER_AGENTS are not set in this project.
    - CsrfViewMiddleware: the POST endpoints are csrf_exempt, and JWKS and discovery are
      GET/HEAD/OPTIONS only, which CSRF never checks (another method gets the view's 405 where
      CSRF answered 403 first). Nothing here asks for a CSRF token, so no cookie to set. A CORS
      preflight (OPTIONS) reaches the view like any other method: token, revocation and
      userinfo answer it for single-page apps' origins (`oauth_clients.oidc.views.token.spa_cors`),
      introspection with its 405.
    - MessageMiddleware: no messages; XFrameOptionsMiddleware and django-csp's CSPMiddleware:
      their headers are added here as constants (`HEADERS`, a policy for JSON: nothing to load,
      no framing) instead of a policy built per response.

    ProbeMiddleware, RequestLogMiddleware (request id, access line, metrics) and
    SecurityMiddleware (SSL redirect, HSTS, nosniff, referrer and opener policies) stay above
    it and still run. What it calls is a small part of Django's `BaseHandler._get_response`:
    resolve, `request.resolver_match`, the view, `.render()` for a template response. Left out:
    view middleware (the only one, CsrfViewMiddleware.process_view, is a no-op here, see above),
    template-response middleware (none in the stack) and ATOMIC_REQUESTS (off; the token and
    revocation views open their own transaction). A view's exception is counted as
    RequestLogMiddleware.process_exception would (it is not called outside `_get_response`) and
    answered by Django's `response_for_exception`, the branded error pages, with the headers.
    """

    URL_NAMES = (
        "oauth2_provider:token",
        "oauth2_provider:device-authorization",
        "oauth2_provider:pushed-authorization-request",
        "oauth2_provider:revoke-token",
        "oauth2_provider:introspect",
        "oauth2_provider:user-info",
        "oauth2_provider:jwks-info",
        "oauth2_provider:oidc-connect-discovery-info",
        "oauth2_provider:oauth-server-metadata",
    )
    # What XFrameOptionsMiddleware (X_FRAME_OPTIONS = "DENY") and CSPMiddleware would add, for
    # responses that are JSON (or a JWT), never a page: load nothing, be framed nowhere.
    HEADERS = {
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        # Resolved at the first request: the URLconf may not be importable yet at start-up.
        self._paths: frozenset[str] | None = None
        self._matches: dict[str, ResolverMatch] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info not in self.paths():
            return self.get_response(request)
        # CommonMiddleware's host check (DisallowedHost: Django answers 400).
        request.get_host()
        request.user = AnonymousUser()
        match = self._matches.get(request.path_info)
        if match is None:
            # Resolved once per path: the URL resolver was ~4 % of a userinfo request's CPU
            # (py-spy --gil), and these paths always resolve to the same view.
            match = self._matches.setdefault(request.path_info, resolve(request.path_info))
        request.resolver_match = match
        try:
            response = match.func(request, *match.args, **match.kwargs)
            if response is None:
                raise ValueError(f"The view {match.view_name} returned None.")
            if callable(getattr(response, "render", None)):
                response = response.render()
        except Exception as exc:
            metrics.observe_exception(view=url_name(request), exception=exc)
            response = response_for_exception(request, exc)
        for name, value in self.HEADERS.items():
            response.setdefault(name, value)
        return response

    def paths(self) -> frozenset[str]:
        """The endpoints' paths as `request.path_info` has them (without the script prefix)."""
        if self._paths is None:
            prefix = get_script_prefix()
            self._paths = frozenset(
                "/" + reverse(name).removeprefix(prefix) for name in self.URL_NAMES
            )
        return self._paths
