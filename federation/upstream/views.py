"""The OpenID Connect sign-in's two steps (to the provider, back from it) and the adapter that
checks what the provider answers.

allauth's own views for its OpenID Connect provider take the ID token's claims unverified when
they came from the token endpoint; `UpstreamOIDCAdapter.complete_login` verifies them
(`federation.id_tokens`) and checks the userinfo answer belongs to the same person.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import requests
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialApp, SocialLogin, SocialToken
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from allauth.socialaccount.providers.oauth2.views import OAuth2CallbackView, OAuth2LoginView
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from allauth.utils import build_absolute_uri
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from federation.id_tokens import IDTokenError, verify_id_token
from federation.views import unavailable


def _json(session: Any, url: str, **kwargs: Any) -> dict[str, Any]:
    response = session.get(url, **kwargs)
    response.raise_for_status()
    value = response.json()
    if not isinstance(value, dict):
        raise OAuth2Error("the provider answered something other than a JSON object")
    return value


class UpstreamOIDCAdapter(OpenIDConnectOAuth2Adapter):
    def get_callback_url(self, request: HttpRequest, app: SocialApp) -> str:
        path = reverse("upstream_callback", kwargs={"provider_id": self.provider_id})
        return build_absolute_uri(request, path, self.redirect_uri_protocol)

    def complete_login(
        self, request: HttpRequest, app: SocialApp, token: SocialToken, **kwargs: Any
    ) -> SocialLogin:
        config = self.openid_config
        expected = str(app.settings.get("server_url", "")).rstrip("/")
        # OpenID Connect Discovery 1.0 §4.3: the document's issuer is the one configured.
        if str(config.get("issuer", "")).rstrip("/") != expected:
            raise OAuth2Error("the provider's configuration names another issuer")
        raw = kwargs.get("response", {}).get("id_token")
        if not isinstance(raw, str) or not raw:
            raise OAuth2Error("the provider sent no ID token")
        with get_adapter(request).get_requests_session() as session:
            jwks = _json(session, config["jwks_uri"])
            try:
                claims = verify_id_token(
                    token=raw, jwks=jwks, issuer=config["issuer"], client_id=app.client_id
                )
            except IDTokenError as error:
                raise OAuth2Error(f"ID token refused: {error}") from error
            data: dict[str, Any] = {"id_token": claims}
            if config.get("userinfo_endpoint"):
                userinfo = _json(
                    session,
                    config["userinfo_endpoint"],
                    headers={"Authorization": f"Bearer {token.token}"},
                )
                # OIDC Core §5.3.2: the userinfo answer is the ID token's person's, or ignored.
                if userinfo.get("sub") != claims["sub"]:
                    raise OAuth2Error("the userinfo answer is about another person")
                data["userinfo"] = userinfo
        return self.get_provider().sociallogin_from_response(request, data)


@require_http_methods(["GET", "POST"])
def login(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        view = OAuth2LoginView.adapter_view(UpstreamOIDCAdapter(request, provider_id))
        return view(request)  # type: ignore[no-any-return]
    except SocialApp.DoesNotExist:
        # Unknown, or disabled (perhaps while the person was away at the provider).
        return unavailable(request)
    except requests.RequestException:
        # The provider's configuration could not be read.
        return unavailable(request, status=HTTPStatus.BAD_GATEWAY)


@require_http_methods(["GET", "POST"])
def callback(request: HttpRequest, provider_id: str) -> HttpResponse:
    try:
        view = OAuth2CallbackView.adapter_view(UpstreamOIDCAdapter(request, provider_id))
        return view(request)  # type: ignore[no-any-return]
    except SocialApp.DoesNotExist:
        return unavailable(request)
