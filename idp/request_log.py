"""Structured logs: one JSON line per request and per audit event, each with the request id.

Nothing secret is ever written: the access line carries the path without its query string
(authorization codes, `state`, `id_token_hint` travel there), never headers, bodies or cookies;
the audit line carries what the audit row holds, which `record_event` promises is secret-free.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

from idp.client_ip import client_ip

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a proxy: short, printable, no spaces or separators that could forge a log
# line (uuid4, nginx's 32-hex $request_id, Caddy's {http.request.uuid} all match).
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

access_logger = logging.getLogger("idp.request")
audit_logger = logging.getLogger("idp.audit")

_current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "idp_request_id", default=""
)


_JSON_VALUES = (str, int, float, bool, type(None), dict, list)


class JsonFormatter(_BaseJsonFormatter):
    """python-json-logger's formatter, minus extra fields that are objects.

    Django attaches the request object to its own records (`django.request`, `django.server`);
    rendered with repr() it would write the full URL, query string and all (authorization codes,
    `state`, `id_token_hint`). Only plain JSON values, the ones our own code chooses to log, pass.
    """

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value
            for key, value in super().process_log_record(log_data).items()
            if isinstance(value, _JSON_VALUES)
        }


def current_request_id() -> str:
    """The id of the request being served in this context ("" outside a request)."""
    return _current_request_id.get()


def request_id_for(request: HttpRequest) -> str:
    """The proxy's X-Request-ID when a proxy is trusted and the value is well-formed, else new.

    Without a trusted proxy (IDP_TRUSTED_PROXY_COUNT) anyone could choose the id of their own
    requests and blend them into somebody else's trail, so we generate one.
    """
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if settings.ALLAUTH_TRUSTED_PROXY_COUNT and _REQUEST_ID_RE.match(incoming):
        return incoming
    return secrets.token_hex(16)


def bind_request_id(request_id: str) -> contextvars.Token[str]:
    return _current_request_id.set(request_id)


def unbind_request_id(token: contextvars.Token[str]) -> None:
    _current_request_id.reset(token)


def _user_id(request: HttpRequest) -> int | str | None:
    """The signed-in user's id, without loading a session only to log it."""
    user: Any = request.__dict__.get("user")
    if isinstance(user, SimpleLazyObject):
        # Evaluated only if the view already looked at the user (no extra session read);
        # `_wrapped is empty` is how Django's lazy objects tell "not evaluated yet".
        wrapped = getattr(user, "_wrapped", empty)
        user = None if wrapped is empty else wrapped
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def log_request(
    *,
    request: HttpRequest,
    status: int,
    duration_ms: float,
    url_name: str,
) -> None:
    access_logger.info(
        "request",
        extra={
            "request_id": getattr(request, "request_id", ""),
            "method": request.method,
            # request.path never includes the query string, where codes and tokens travel.
            "path": request.path,
            "url_name": url_name,
            "status": status,
            "duration_ms": round(duration_ms, 2),
            "client_ip": client_ip(request),
            "user_id": _user_id(request),
        },
    )


def log_audit_event(event: Any) -> None:
    """Called by `accounts.audit.record_event` right after the row is written."""
    audit_logger.info(
        "audit",
        extra={
            "request_id": current_request_id(),
            "event": event.type,
            "audit_id": event.pk,
            "actor_id": event.actor_id,
            "subject_id": event.subject_id,
            "client_id": event.client_repr or None,
            "client_ip": event.ip,
            "details": event.extra,
        },
    )
