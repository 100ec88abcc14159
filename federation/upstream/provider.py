"""`UpstreamOIDCProvider`: allauth's OpenID Connect provider with a nonce and fixed requests."""

from __future__ import annotations

import secrets
from typing import Any

from allauth.account.models import EmailAddress
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from django.http import HttpRequest

from federation.upstream.views import UpstreamOIDCAdapter

# Where the nonce sent with the authorization request is kept: allauth's state of this sign-in
# (one per `state`, in the session, used once).
NONCE_STATE_KEY = "nonce"


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class UpstreamOIDCProvider(OpenIDConnectProvider):
    id = "upstream"
    name = "OpenID Connect"
    package = "federation.upstream"
    oauth2_adapter_class = UpstreamOIDCAdapter
    pkce_enabled_default = True

    def extract_email_addresses(self, data: Any) -> list[EmailAddress]:
        # allauth counts any truthy `email_verified` (the string "false" too). Verified here
        # means the boolean true (OIDC Core §5.1), or Entra ID's `xms_edov` optional claim
        # (the address's domain is verified by its tenant: Entra's own `email` claim is not).
        claims = {**(data.get("userinfo") or {}), **(data.get("id_token") or {})}
        email = claims.get("email")
        if not isinstance(email, str) or not email:
            return []
        verified = _is_true(claims.get("email_verified")) or _is_true(claims.get("xms_edov"))
        return [EmailAddress(email=email, verified=verified, primary=True)]

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
