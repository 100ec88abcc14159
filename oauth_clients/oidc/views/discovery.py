"""Provider metadata: OIDC Discovery 1.0 §4 and RFC 8414 §3, one document at both addresses.

Lists only what is really supported (authorization code + PKCE S256, the device authorization
grant (RFC 8628), RS256 and, with an EC key,
ES256 ID tokens, the client authentication methods the token endpoint implements). The issuer is
`IDP_ISSUER`, identical here, in ID tokens and in the `iss` authorization-response parameter
(RFC 9207). Cacheable by clients; encoded once per process (`oauth_clients.oidc.published`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.decorators import method_decorator
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.settings import oauth2_settings

from oauth_clients.client_keys import ASSERTION_ALGORITHMS
from oauth_clients.key_store import signing_algorithms
from oauth_clients.oidc.backend import ACR_VALUES_SUPPORTED, PROMPT_VALUES_SUPPORTED
from oauth_clients.oidc.claims import supported_claims
from oauth_clients.oidc.device import DEVICE_CODE_GRANT
from oauth_clients.oidc.dpop import ALGORITHMS as DPOP_ALGORITHMS
from oauth_clients.oidc.published import json_body

MAX_AGE_SECONDS = 3600
# RFC 7523 §2.2 / OIDC Core §9: `private_key_jwt` too (client_secret_jwt is not offered: a
# hashed secret cannot be an HMAC key).
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


def endpoint_url(name: str) -> str:
    """Absolute URL of one of our endpoints, on the issuer's scheme and host."""
    issuer = urlsplit(settings.IDP_ISSUER)
    return f"{issuer.scheme}://{issuer.netloc}{reverse(f'oauth2_provider:{name}')}"


def provider_metadata() -> dict[str, Any]:
    """The discovery document (built fresh; the view serves it from `json_body`)."""
    data: dict[str, Any] = {
        "issuer": settings.IDP_ISSUER,
        "authorization_endpoint": endpoint_url("authorize"),
        "token_endpoint": endpoint_url("token"),
        "userinfo_endpoint": endpoint_url("user-info"),
        "jwks_uri": endpoint_url("jwks-info"),
        "revocation_endpoint": endpoint_url("revoke-token"),
        "introspection_endpoint": endpoint_url("introspect"),
        "scopes_supported": list(oauth2_settings.SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            DEVICE_CODE_GRANT,
        ],
        # RFC 9126 §5: where a client pushes its authorization requests; per client only
        # (`Client.require_pushed_authorization_requests`), not for every client.
        "pushed_authorization_request_endpoint": endpoint_url("pushed-authorization-request"),
        "require_pushed_authorization_requests": False,
        # RFC 8628 §4: where a device asks for its codes.
        "device_authorization_endpoint": endpoint_url("device-authorization"),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algorithms(),
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        # RFC 7662 §2.1: introspection requires client authentication.
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        # RFC 8414 §2: what a `private_key_jwt` assertion may be signed with, per endpoint.
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        # RFC 9449 §5.1: DPoP-bound tokens, and what a proof may be signed with.
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),
        # OIDC Discovery 1.0 §3: the `acr` values `acr_values` may ask for (and ID tokens carry).
        "acr_values_supported": list(ACR_VALUES_SUPPORTED),
        "claims_supported": supported_claims(),
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        # Request objects by reference (OIDC Core §6.2) are not fetched; the PAR endpoint's
        # `request_uri` (RFC 9126 §4) is advertised by its own metadata above.
        "request_uri_parameter_supported": False,
        "prompt_values_supported": list(PROMPT_VALUES_SUPPORTED),
        # OIDC Discovery 1.0 §3: the languages `ui_locales` can choose (idp/locale.py).
        "ui_locales_supported": [code for code, _name in settings.LANGUAGES],
        "authorization_response_iss_parameter_supported": True,
    }
    if oauth2_settings.OIDC_RP_INITIATED_LOGOUT_ENABLED:
        data["end_session_endpoint"] = endpoint_url("rp-initiated-logout")
    # OIDC Back-Channel Logout 1.0 §2.1: logout tokens POSTed to registered apps, with `sid`.
    data["backchannel_logout_supported"] = True
    data["backchannel_logout_session_supported"] = True
    # OIDC Front-Channel Logout 1.0 §3: logout URIs framed on our signed-out page, iss and sid.
    data["frontchannel_logout_supported"] = True
    data["frontchannel_logout_session_supported"] = True
    return data


@method_decorator(login_not_required, name="dispatch")
class DiscoveryView(View):
    """GET <issuer>/.well-known/openid-configuration and /.well-known/oauth-authorization-server."""

    http_method_names = ["get", "head", "options"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = HttpResponse(
            json_body("discovery", provider_metadata), content_type="application/json"
        )
        response["Access-Control-Allow-Origin"] = "*"
        patch_cache_control(response, public=True, max_age=MAX_AGE_SECONDS)
        return response
