"""How a Django request becomes an oauthlib request at the authorization endpoint.

DOT's `OAuthLibCore` hands oauthlib only the URI, body and headers, so the validator cannot see
who is signed in while it validates an authorization request (`prompt=none`, `id_token_hint`,
`max_age`). This subclass puts the signed-in user and this browser session's binding (`sid`,
`auth_time`, `amr`, `acr`: the request's `grant_state`) on the oauthlib request, both when the
request is validated and when the code is issued (so `save_authorization_code` can copy them into
the Grant), and refuses what oauthlib lets through: PKCE `plain` and malformed challenges,
repeated parameters, request objects, `prompt` values we do not support.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.oauth2_validators import is_valid_resource_uri
from oauthlib import oauth2
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749 import utils
from oauthlib.oauth2.rfc6749.errors import CustomOAuth2Error

from accounts.sessions import ACR_MULTI_FACTOR, ACR_PHISHING_RESISTANT, session_binding
from oauth_clients.oidc.grant_state import authorization_credentials, grant_state

# RFC 8707 lets `resource` repeat; RFC 6749 §3.1 forbids repeating any other parameter.
REPEATABLE_PARAMETERS = frozenset({"resource"})
# Fields of our own consent form, posted back to the authorization endpoint with the request.
CONSENT_FORM_FIELDS = frozenset({"allow", "deny", "csrfmiddlewaretoken"})
# RFC 7636 §4.2: an S256 challenge is BASE64URL(SHA256(verifier)) without padding, 32 bytes in
# 43 characters of the base64url alphabet.
S256_CODE_CHALLENGE_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 9449 §10: `dpop_jkt` is a JWK SHA-256 thumbprint (RFC 7638), 43 base64url characters.
DPOP_JKT_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# The `prompt` values discovery advertises (`prompt_values_supported`, views/discovery.py).
PROMPT_VALUES_SUPPORTED = ("none", "login", "consent")
# What `acr_values` may ask for (OIDC Core §3.1.2.1), weakest first; both need a second factor.
ACR_VALUES_SUPPORTED = (ACR_MULTI_FACTOR, ACR_PHISHING_RESISTANT)


def requested_acr_values(value: str | None) -> list[str]:
    """The `acr_values` we support, in the request's order (others are ignored: voluntary)."""
    return [acr for acr in (value or "").split() if acr in ACR_VALUES_SUPPORTED]


def authorization_parameters(request: HttpRequest) -> list[tuple[str, str]]:
    """The authorization request's parameters from the query and (POST) form body, in order.

    Our consent form's own fields are left out, so the list can rebuild the request's URL for the
    sign-in round trip and for the consent form's action.
    """
    pairs = [(key, value) for key, values in request.GET.lists() for value in values]
    if request.method == "POST":
        pairs += [(key, value) for key, values in request.POST.lists() for value in values]
    return [(key, value) for key, value in pairs if key not in CONSENT_FORM_FIELDS]


def parse_max_age(value: str | None) -> int | None:
    """`max_age` as seconds (None when absent); ValueError unless plain ASCII digits."""
    if value is None:
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise ValueError("max_age must be a non-negative integer")
    return int(text)


def max_age_exceeded(*, max_age: int | None, auth_time: int | None, now: int) -> bool:
    """OIDC Core §3.1.2.1: the session's authentication is older than the client accepts."""
    if max_age is None:
        return False
    return auth_time is None or now - auth_time > max_age


def _check_policy(orequest: OauthlibRequest) -> None:
    """What oauthlib accepts and we refuse; runs once client and redirect URI are known good."""
    params = [*orequest.uri_query_params, *(orequest.decoded_body or [])]
    counts = Counter(key for key, _ in params if key not in REPEATABLE_PARAMETERS)
    repeated = sorted(key for key, count in counts.items() if count > 1)
    if repeated:
        # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
        raise oauth2.InvalidRequestError(
            description=f"Duplicate {repeated[0]} parameter.", request=orequest
        )
    if any("\x00" in key or "\x00" in value for key, value in params):
        # No parameter of ours may hold a NUL byte (nor can PostgreSQL store one).
        raise oauth2.InvalidRequestError(
            description="Parameters must not contain NUL bytes.", request=orequest
        )
    names = {key for key, _ in params}
    if "request" in names:
        # OIDC Core §6 / §3.1.2.6: request objects are not supported, and say so.
        raise CustomOAuth2Error(
            error="request_not_supported",
            description="Request objects are not supported.",
            request=orequest,
        )
    if "request_uri" in names:
        raise CustomOAuth2Error(
            error="request_uri_not_supported",
            description="Request objects by reference are not supported.",
            request=orequest,
        )
    resources = [value for key, value in params if key == "resource"]
    if not all(is_valid_resource_uri(value) for value in resources):
        # RFC 8707 §2: an absolute URI without fragment, else invalid_target.
        raise CustomOAuth2Error(
            error="invalid_target",
            description="resource must be an absolute URI without a fragment.",
            request=orequest,
        )
    if orequest.response_mode not in (None, "query"):
        # Discovery lists `response_modes_supported: ["query"]`; oauthlib would silently answer
        # a form_post client by query and a fragment client in the fragment.
        raise oauth2.InvalidRequestError(
            description="Only response_mode=query is supported.", request=orequest
        )
    if orequest.code_challenge is not None and orequest.code_challenge_method != "S256":
        # RFC 9700 §2.1.1: S256 only; a missing method means "plain" (RFC 7636 §4.3).
        raise oauth2.InvalidRequestError(
            description="Unsupported code_challenge_method; use S256.", request=orequest
        )
    if orequest.code_challenge is not None and not S256_CODE_CHALLENGE_RE.fullmatch(
        orequest.code_challenge
    ):
        # RFC 7636 §4.2: a challenge of another length or alphabet is no S256 challenge, and no
        # verifier would ever match it; say so now rather than fail the code exchange.
        raise oauth2.InvalidRequestError(
            description="code_challenge must be 43 base64url characters (S256).",
            request=orequest,
        )
    dpop_jkt = getattr(orequest, "dpop_jkt", None)
    if dpop_jkt is not None and not DPOP_JKT_RE.fullmatch(dpop_jkt):
        # RFC 9449 §10: the base64url SHA-256 thumbprint of the client's DPoP key.
        raise oauth2.InvalidRequestError(
            description="dpop_jkt must be a JWK SHA-256 thumbprint (43 base64url characters).",
            request=orequest,
        )
    prompt = set((orequest.prompt or "").split())
    unsupported = sorted(prompt.difference(PROMPT_VALUES_SUPPORTED))
    if unsupported:
        # OIDC Core §3.1.2.1: an OP refuses a prompt value it does not support (invalid_request)
        # rather than ignore what the client asked for (e.g. select_account, create).
        raise oauth2.InvalidRequestError(
            description="Unsupported prompt value; supported: none, login, consent.",
            request=orequest,
        )
    if "none" in prompt and len(prompt) > 1:
        # OIDC Core §3.1.2.1: "none" with any other value is an error (oauthlib checks this
        # only when `openid` is among the scopes).
        raise oauth2.InvalidRequestError(
            description="prompt=none cannot be combined with other values.", request=orequest
        )
    try:
        parse_max_age(orequest.max_age)
    except ValueError as exc:
        # OIDC Core §3.1.2.1: max_age is a number of seconds.
        raise oauth2.InvalidRequestError(
            description="max_age must be a non-negative integer.", request=orequest
        ) from exc


def check_high_security_request(
    orequest: OauthlibRequest, *, pushed: list[tuple[str, str]] | None
) -> None:
    """FAPI 2.0 Security Profile §5.3.2.2 for a high-security client (`Client.high_security`),
    beyond what its flags already require (PAR above, PKCE S256 through `is_pkce_required`;
    `redirect_uri` every client must send, `authorization_policy.get_default_redirect_uri`):
    the code is bound to the client's DPoP key (RFC 9449 §10: `dpop_jkt`, which the PAR
    endpoint adds from the push's own DPoP proof, §10.1), so a stolen code is worthless
    without the key."""
    names = {key for key, _value in pushed or []}
    if "dpop_jkt" not in names:
        raise oauth2.InvalidRequestError(
            description=(
                "A high-security client must bind the code to its DPoP key: send dpop_jkt or "
                "a DPoP proof with the pushed request."
            ),
            request=orequest,
        )


class _ParsedOnceRequest(OauthlibRequest):
    """oauthlib's request, its query parsed once: oauthlib parses it again for every parameter
    it checks for repetition (`duplicate_params`, about ten per authorization request)."""

    @cached_property
    def uri_query_params(self) -> list[tuple[str, str]]:  # type: ignore[override]
        return OauthlibRequest.uri_query_params.fget(self)  # type: ignore[attr-defined]


class IdPOAuthLibCore(OAuthLibCore):
    """OAuthLibCore that knows the signed-in session (OAUTH2_BACKEND_CLASS)."""

    def _extract_authorization(
        self, request: HttpRequest, pushed: list[tuple[str, str]] | None
    ) -> tuple[str, str, str, dict]:
        # DOT's private extraction, as DOT's own methods use it: its validation hands oauthlib
        # no signed-in user, so it is replaced whole (pinned: tests/oidc/test_grant_state.py).
        uri, http_method, body, headers = self._extract_params(request)
        if pushed is not None:
            # RFC 9126 §4: a pushed request's parameters are the request; the browser's URL
            # carries only `client_id` and `request_uri` (oauth_clients/oidc/pushed.py).
            uri = f"{reverse('oauth2_provider:authorize')}?{urlencode(pushed)}"
            http_method, body = "GET", ""
        return uri, http_method, body, headers

    def validate_authorization_request(
        self, request: HttpRequest, pushed: list[tuple[str, str]] | None = None
    ) -> tuple[list[str], dict]:
        """oauthlib's validation of the request (or of `pushed`, the parameters of a pushed
        authorization request, RFC 9126) with the signed-in session and our policy."""
        try:
            uri, http_method, body, headers = self._extract_authorization(request, pushed)
            orequest = _ParsedOnceRequest(uri, http_method=http_method, body=body, headers=headers)
        except ValueError as exc:
            # oauthlib cannot parse the query (bad percent-encoding): nothing is trustworthy.
            raise FatalClientError(
                error=oauth2.InvalidRequestFatalError(description="Malformed request.")
            ) from exc
        # What oauthlib's Server.validate_authorization_request does, plus who is signed in.
        orequest.scopes = utils.scope_to_list(orequest.scope)
        orequest.user = request.user if request.user.is_authenticated else None
        grant_state(orequest).binding = session_binding(request)
        handler = self.server.response_types.get(
            orequest.response_type, self.server.default_response_type_handler
        )
        try:
            scopes, credentials = handler.validate_authorization_request(orequest)
            _check_policy(orequest)
            if pushed is None and orequest.client.must_push_requests:
                # RFC 9126 §6: this client's requests must be pushed first.
                raise oauth2.InvalidRequestError(
                    description="This client must use pushed authorization requests.",
                    request=orequest,
                )
            if orequest.client.high_security:
                check_high_security_request(orequest, pushed=pushed)
        except oauth2.FatalClientError as error:
            raise FatalClientError(error=error) from error
        except oauth2.OAuth2Error as error:
            # Non-fatal errors come only after client and redirect URI passed, but some of
            # oauthlib's (a malformed `claims`) forget which request they belong to.
            if error.redirect_uri is None:
                error.redirect_uri = orequest.redirect_uri
            if error.state is None:
                error.state = orequest.state
            raise OAuthToolkitError(error=error) from error
        credentials.pop("request", None)
        # The validated client rides along: the view and the code issuance reuse it (DOT's
        # `_load_application` accepts a matching, usable `request.client`).
        credentials["client"] = orequest.client
        # RFC 8707: every `resource` (it may repeat), as the list the Grant stores.
        resources = [value for key, value in orequest.uri_query_params if key == "resource"]
        resources += [value for key, value in orequest.decoded_body or [] if key == "resource"]
        credentials["resource"] = resources
        return scopes, credentials

    def create_authorization_response(
        self,
        request: HttpRequest,
        scopes: list[str],
        credentials: dict,
        allow: bool,
        pushed: list[tuple[str, str]] | None = None,
    ) -> tuple[Any, ...]:
        # The Grant records which session, when and how (Grant.sid/auth_time/amr/acr); oauthlib
        # sets each credential on the request it builds to issue the code.
        bound = {**credentials, **authorization_credentials(session_binding(request))}
        if pushed is None:
            return super().create_authorization_response(request, scopes, bound, allow)
        # DOT's method builds oauthlib's request from the browser's URL; a pushed request's
        # parameters (PKCE challenge, nonce, resources...) are in `pushed`, so oauthlib is
        # called here as DOT calls it (the view's `redirect` adds RFC 9207's `iss`).
        try:
            if not allow:
                raise oauth2.AccessDeniedError(state=credentials.get("state"))
            bound["user"] = request.user
            uri, http_method, _body, headers = self._extract_authorization(request, pushed)
            headers, body, status = self.server.create_authorization_response(
                uri=uri, http_method=http_method, headers=headers, scopes=scopes, credentials=bound
            )
            return headers.get("Location", None), headers, body, status
        except oauth2.FatalClientError as error:
            raise FatalClientError(error=error, redirect_uri=credentials["redirect_uri"]) from error
        except oauth2.OAuth2Error as error:
            raise OAuthToolkitError(
                error=error, redirect_uri=credentials["redirect_uri"]
            ) from error
