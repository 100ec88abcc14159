"""The pushed authorization request endpoint (RFC 9126): POST /o/par/.

A machine endpoint like the token endpoint (no session, no CSRF: `back_channel_view`; answered
by `idp.middleware.MachineEndpointMiddleware`; CORS for registered single-page apps' origins).
Order of work:
1. the request's form: POST, form-urlencoded UTF-8, at most `MAX_BODY_BYTES` (RFC 9126 §2.1
   lets the server bound it); anything else is an OAuth error (RFC 6749 §5.2), never a 500;
2. client authentication exactly as at the token endpoint (the validator's
   `authenticate_client`: client_secret_basic / _post, private_key_jwt; a public client by its
   `client_id`), `invalid_client` (401) otherwise (RFC 9126 §2.1);
3. the authorization request validated as the authorization endpoint validates it
   (`IdPOAuthLibCore.validate_authorization_request` with the pushed parameters: redirect URI,
   response type, scopes, PKCE, our policy), errors as JSON (RFC 9126 §2.3); a `request_uri`
   inside it is refused (§2.1);
   a DPoP proof sent with the push binds the code to its key (RFC 9449 §10.1: `dpop_jkt`);
4. 201 with the `request_uri` and `expires_in` (§2.2), the parameters kept by
   `oauth_clients.oidc.pushed` for the browser's visit to /o/authorize/.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauthlib.common import Request as OauthlibRequest

from oauth_clients.oidc import dpop
from oauth_clients.oidc.pushed import (
    CLIENT_AUTHENTICATION_PARAMETERS,
    PUSHED_REQUEST_SECONDS,
    store_pushed_request,
)
from oauth_clients.oidc.views.authorize import MAX_PARAMETER_LENGTH, AuthorizeView
from oauth_clients.oidc.views.token import (
    FORM_CONTENT_TYPE,
    back_channel_view,
    foreign_charset,
    oauth_error,
    oauthlib_response,
    spa_cors,
)

# RFC 9126 §2.1 leaves the bound to the server: a real request (a PKCE challenge, a redirect
# URI, scopes, a `claims` object, a few resources) is well under 2 KiB.
MAX_BODY_BYTES = 16 * 1024


def _invalid_client() -> HttpResponse:
    # RFC 6749 §5.2: 401 with the Basic challenge, as the token endpoint answers it.
    return oauthlib_response(
        {},
        '{"error": "invalid_client", "error_description": "Client authentication failed."}',
        HTTPStatus.UNAUTHORIZED,
    )


def _form(request: HttpRequest) -> HttpResponse | list[tuple[str, str]]:
    """The request's parameters in order, or the error response for a malformed request."""
    if request.method != "POST":
        return oauth_error(
            "invalid_request",
            "This endpoint accepts POST only.",
            HTTPStatus.METHOD_NOT_ALLOWED,
            headers={"Allow": "POST"},
        )
    if (request.content_type or "") != FORM_CONTENT_TYPE:
        return oauth_error("invalid_request", f"The request body must be {FORM_CONTENT_TYPE}.")
    if foreign_charset(request):
        return oauth_error("invalid_request", "The request body must be UTF-8 encoded.")
    too_large = oauth_error(
        "invalid_request",
        f"The pushed request is larger than {MAX_BODY_BYTES} bytes.",
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return too_large  # refused before the body is read
    try:
        if len(request.body) > MAX_BODY_BYTES:
            return too_large
        params = [(key, value) for key, values in request.POST.lists() for value in values]
    except RequestDataTooBig:
        return too_large
    except TooManyFieldsSent:
        return oauth_error("invalid_request", "The request has too many parameters.")
    if any(len(value) > MAX_PARAMETER_LENGTH for _key, value in params):
        return oauth_error("invalid_request", "A parameter is too long.")
    return params


def _authenticated_client(request: HttpRequest, core: Any) -> Any:
    """The client, authenticated as at the token endpoint (RFC 9126 §2.1), or None."""
    uri, http_method, body, headers = core._extract_params(request)  # DOT's, as in backend.py
    orequest = OauthlibRequest(uri, http_method=http_method, body=body, headers=headers)
    validator = core.server.request_validator
    # oauthlib's order at the token endpoint (RFC 6749 §3.2.1): a client that must
    # authenticate does; a public client is identified by its id.
    if validator.client_authentication_required(orequest):
        authenticated = validator.authenticate_client(orequest)
    elif orequest.client_id:
        authenticated = validator.authenticate_client_id(orequest.client_id, orequest)
    else:
        authenticated = False
    return orequest.client if authenticated else None


def _dpop_binding(
    request: HttpRequest, client: Any, parameters: list[tuple[str, str]]
) -> HttpResponse | list[tuple[str, str]]:
    """RFC 9449 §10.1: a DPoP proof sent with the push binds the code to its key, as
    `dpop_jkt` would (added to the parameters when the request has none); a `dpop_jkt` naming
    another key is refused. The proof is checked as at the token endpoint (§4.3), for this
    endpoint's URI."""
    proof = request.META.get("HTTP_DPOP")
    if proof is None:
        return parameters
    try:
        jkt = dpop.verify_proof(
            proof=proof,
            method="POST",
            uri=dpop.endpoint_uri(request.path),
            algorithms=dpop.strict_algorithms(client),
        )
    except dpop.InvalidProof as refused:
        if refused.replayed:
            dpop.record_refusal(request=request, client=client, reason=str(refused))
        return oauth_error("invalid_dpop_proof", str(refused))
    named = [value for key, value in parameters if key == "dpop_jkt"]
    if not named:
        return [*parameters, ("dpop_jkt", jkt)]
    if named != [jkt]:
        return oauth_error(
            "invalid_dpop_proof", "dpop_jkt does not match the key of the DPoP proof."
        )
    return parameters


def _pushed_authorization_request(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    if isinstance(form, HttpResponse):
        return form
    core = AuthorizeView.get_oauthlib_core()
    client = _authenticated_client(request, core)
    if client is None:
        return _invalid_client()
    names = [key for key, _value in form]
    if "request_uri" in names:
        return oauth_error("invalid_request", "request_uri must not be pushed (RFC 9126 §2.1).")
    if names.count("client_id") > 1:
        return oauth_error("invalid_request", "Duplicate client_id parameter.")
    # The authorization request: without client authentication, and with the authenticated
    # client's id (a client_secret_basic or private_key_jwt client may leave it out).
    parameters = [
        (key, value)
        for key, value in form
        if key not in CLIENT_AUTHENTICATION_PARAMETERS and key != "client_id"
    ]
    parameters.insert(0, ("client_id", client.client_id))
    bound = _dpop_binding(request, client, parameters)
    if isinstance(bound, HttpResponse):
        return bound
    parameters = bound
    # `prompt=none` asks about the browser's session, which a pushed request has none of: it
    # is answered when the browser arrives, where the whole request is validated again.
    checked = [(k, v) for k, v in parameters if (k, v) != ("prompt", "none")]
    try:
        core.validate_authorization_request(request, pushed=checked)
    except (FatalClientError, OAuthToolkitError) as failure:
        error = failure.oauthlib_error
        return oauth_error(error.error, error.description or error.error)
    request_uri = store_pushed_request(client_id=client.client_id, parameters=parameters)
    response = JsonResponse(
        {"request_uri": request_uri, "expires_in": PUSHED_REQUEST_SECONDS},
        status=HTTPStatus.CREATED,
    )
    response["Cache-Control"] = "no-store"
    return response


# CSRF-exempt, no sign-in, never cached (RFC 9126 §2.2); a single-page app (a public client)
# may push from the browser, as it redeems its code (`spa_cors`).
pushed_authorization_request = back_channel_view(
    spa_cors(_pushed_authorization_request, methods=("POST",))
)
