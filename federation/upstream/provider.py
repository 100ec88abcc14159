"""`UpstreamOIDCProvider`: allauth's OpenID Connect provider with a nonce and fixed requests."""

from __future__ import annotations

import secrets
from typing import Any

from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.http import HttpRequest

from federation.upstream.views import UpstreamOIDCAdapter

# Where the nonce sent with the authorization request is kept: allauth's state of this sign-in
# (one per `state`, in the session, used once).
NONCE_STATE_KEY = "nonce"


class UpstreamOIDCProvider(OpenIDConnectProvider):
    id = "upstream"
    name = "OpenID Connect"
    package = "federation.upstream"
    oauth2_adapter_class = UpstreamOIDCAdapter
    pkce_enabled_default = True

    def get_auth_params_from_request(self, request: HttpRequest, action: Any) -> dict:
        # allauth adds any `auth_params` of the sign-in URL's query; the parameters sent
        # upstream are the administrator's only.
        return self.get_auth_params()

    def get_scope_from_request(self, request: HttpRequest) -> list[str]:
        # Likewise the scope: never widened from the query string.
        return self.get_scope()

    def redirect(
        self,
        request: HttpRequest,
        process: Any,
        next_url: str | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> Any:
        # OIDC Core §3.1.2.1 / §15.5.2: a nonce bound to this browser's sign-in, checked
        # against the ID token's (federation.adapter).
        nonce = secrets.token_urlsafe(32)
        auth_params = kwargs.pop("auth_params", None)
        if auth_params is None:
            auth_params = self.get_auth_params()
        auth_params = {**auth_params, "nonce": nonce}
        return super().redirect(
            request,
            process,
            next_url,
            data,
            auth_params=auth_params,
            **{**kwargs, NONCE_STATE_KEY: nonce},
        )
