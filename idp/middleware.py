"""Operations middleware: probes answered first, then a request id, a JSON log line and metrics.

Order in settings.MIDDLEWARE: `ProbeMiddleware` first, `RequestLogMiddleware` second, then
Django's SecurityMiddleware and the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
