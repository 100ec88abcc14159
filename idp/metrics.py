"""Prometheus metrics: request latency per URL name, logins, tokens issued, sessions, errors.

Why prometheus-client and not django-prometheus: we need a handful of metrics labelled by URL name
plus counters fed by the audit service, and an endpoint with our own access rule; django-prometheus
adds two middlewares, database/cache wrappers and model mixins for metrics we do not read, and its
endpoint is unauthenticated. Under gunicorn (several worker processes) prometheus-client's
multiprocess mode aggregates the workers' values from PROMETHEUS_MULTIPROC_DIR, which
deploy/gunicorn.conf.py sets before any worker imports this module.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

from idp.client_ip import client_ip

REQUEST_LATENCY = Histogram(
    "idp_http_request_duration_seconds",
    "Time to answer a request, by URL name (never the raw path) and method.",
    ["view", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUESTS = Counter(
    "idp_http_requests",
    "Requests answered, by URL name, method and status code.",
    ["view", "method", "status"],
)
EXCEPTIONS = Counter(
    "idp_http_exceptions",
    "Unhandled exceptions (answered 500), by URL name and exception class.",
    ["view", "exception"],
)
LOGINS = Counter("idp_logins", "Sign-in attempts by result.", ["result"])
TOKENS_ISSUED = Counter("idp_tokens_issued", "Token responses by grant type.", ["grant_type"])
AUDIT_EVENTS = Counter("idp_audit_events", "Audit events written, by type.", ["type"])

for _result in ("success", "failure", "locked"):
    LOGINS.labels(result=_result)

# Audit event type -> login result label.
_LOGIN_RESULTS = {
    "login.succeeded": "success",
    "login.failed": "failure",
    "account.locked": "locked",
}


# Methods outside this set are counted as OTHER, so a client cannot mint label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(*, view: str, method: str, status: int, seconds: float) -> None:
    method = method if method in _METHODS else "OTHER"
    REQUEST_LATENCY.labels(view=view, method=method).observe(seconds)
    REQUESTS.labels(view=view, method=method, status=str(status)).inc()


def observe_exception(*, view: str, exception: BaseException) -> None:
    EXCEPTIONS.labels(view=view, exception=type(exception).__name__).inc()


def observe_audit_event(event: Any) -> None:
    """Called by `accounts.audit.record_event` for every row it writes (a few dict look-ups)."""
    AUDIT_EVENTS.labels(type=event.type).inc()
    result = _LOGIN_RESULTS.get(event.type)
    if result is not None:
        LOGINS.labels(result=result).inc()


def observe_token_issued(grant_type: str) -> None:
    """Called by the token endpoint for every 200 answer. Counted there, not from the audit
    rows: client-credentials grants write none (their one write is the token), and the label
    is the request's own `grant_type`, which the endpoint has already checked against the
    grant types it supports (a client cannot mint label values)."""
    TOKENS_ISSUED.labels(grant_type=grant_type).inc()


class ActiveSessionsCollector:
    """Signed-in browser sessions seen within the session lifetime, counted at scrape time.

    allauth's usersessions keeps one row per signed-in session (and deletes it on sign-out),
    whether the session itself lives in Redis or PostgreSQL. A row whose last activity is older
    than SESSION_COOKIE_AGE belongs to a session that has expired.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from allauth.usersessions.models import UserSession

        since = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
        count = UserSession.objects.filter(last_seen_at__gte=since).count()
        family = GaugeMetricFamily("idp_active_sessions", "Signed-in browser sessions.")
        family.add_metric([], count)
        yield family


def _client_allowed(request: HttpRequest) -> bool:
    networks = settings.IDP_METRICS_ALLOWED_CIDRS
    if not networks:
        return False
    # Behind a trusted proxy this is the real client, so a public request relayed by the
    # ingress (whose own address is inside the cluster network) is not mistaken for a scraper.
    ip = client_ip(request)
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in networks)


def _token_allowed(request: HttpRequest) -> bool:
    expected = settings.IDP_METRICS_TOKEN
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


def metrics_access_allowed(request: HttpRequest) -> bool:
    return _token_allowed(request) or _client_allowed(request)


def render_metrics() -> bytes:
    sessions = CollectorRegistry()
    sessions.register(ActiveSessionsCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: add up the values every worker wrote to the shared directory.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return generate_latest(registry) + generate_latest(sessions)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics for Prometheus; 404 (as if absent) to anyone without the token or address."""
    if request.method != "GET" or not metrics_access_allowed(request):
        return HttpResponseNotFound(b"Not Found", content_type="text/plain")
    response = HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response
