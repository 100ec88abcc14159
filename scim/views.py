"""/scim/v2/: every SCIM request, read from Django, served by scim2-server on the directory.

Here: the bearer token (every endpoint, ServiceProviderConfig too: it names no secret but this
IdP answers no one it has not issued a token to), the body bound, and the one place a failure
becomes a SCIM error body (RFC 7644 §3.12: `schemas` Error, `status` as a string, `scimType`).
scim2-server's own WSGI application is not mounted: it would bypass Django's middleware (host
check, request log, metrics) and its database connection handling.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    InvalidValueException,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse

from accounts.audit import acting_client
from idp.input_limits import holds_nul, request_holds_nul
from scim.handler import DirectoryHandler
from scim.models import ScimToken
from scim.provider import service
from scim.storage import DirectoryStorage
from scim.tokens import find_token

logger = logging.getLogger(__name__)


def _token(request: HttpRequest) -> ScimToken:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    token = find_token(presented.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise UnauthorizedException(detail="A valid SCIM bearer token is required")
    return token


def _body(request: HttpRequest) -> bytes:
    """The body, at most IDP_SCIM_MAX_BODY_BYTES: a larger one is refused before it is read
    (by its Content-Length) or as soon as it passes the bound (a chunked body)."""
    limit = settings.IDP_SCIM_MAX_BODY_BYTES
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.isdigit() and int(length) > limit:
        raise PayloadTooLargeException(detail=f"A SCIM request body is at most {limit} bytes")
    body = request.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLargeException(detail=f"A SCIM request body is at most {limit} bytes")
    return body


def _refuse_nul(request: HttpRequest, body: bytes) -> None:
    """A NUL character anywhere in the path, the query or the body's JSON is a 400 invalidValue
    (idp/input_limits.py: PostgreSQL could not store it). A body that is no JSON is left to
    scim2-server, which answers invalidSyntax."""
    try:
        document = json.loads(body) if body else None
    except ValueError:
        document = None
    if request_holds_nul(request) or holds_nul(document):
        raise InvalidValueException(detail="Values may not contain NUL characters")


def _scim_request(request: HttpRequest, path: str) -> ScimRequest:
    base_url = request.build_absolute_uri("/scim/v2").rstrip("/")
    return ScimRequest(
        method=request.method or "GET",
        base_url=base_url,
        path="/" + path.removesuffix(".scim"),
        query={key: request.GET[key] for key in request.GET},
        headers=dict(request.headers.items()),
    )


def _response(scim_response: ScimResponse) -> HttpResponse:
    body = (
        json.dumps(scim_response.body, ensure_ascii=False) if scim_response.body is not None else ""
    )
    response = HttpResponse(body, status=int(scim_response.status))
    for name, value in scim_response.headers.items():
        response[name] = value
    if scim_response.body is None:
        del response["Content-Type"]
    response.setdefault("Cache-Control", "no-store")
    return response


def _error(exception: Exception) -> ScimResponse:
    if not isinstance(exception, SCIMException):
        logger.exception("SCIM request failed", exc_info=exception)
    return service().error_response(exception)


@csrf_exempt
def scim_endpoint(request: HttpRequest, path: str = "") -> HttpResponse:
    """Any SCIM endpoint (RFC 7644 §3.2): authenticated, then served by scim2-server."""
    scim_request = _scim_request(request, path)
    try:
        scim_request.subject = token = _token(request)
        scim_request.body = _body(request)
        _refuse_nul(request, scim_request.body)
        handler = DirectoryHandler(service(), DirectoryStorage(request=request))
        with acting_client(label=f"scim:{token.name}", scim_token_id=token.pk):
            scim_response = handler.handle(scim_request)
    except Exception as exception:  # every failure is answered as a SCIM error body
        scim_response = _error(exception)
    if scim_response.status == HTTPStatus.UNAUTHORIZED:
        scim_response.headers["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    return _response(scim_response)
