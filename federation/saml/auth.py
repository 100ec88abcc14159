"""python3-saml's settings for an upstream SAML provider, from allauth's app settings.

Why python3-saml (allauth's SAML provider) and not pysaml2, which our own SAML IdP uses
(oauth_clients/saml/): allauth's provider brings the service-provider side whole (AuthnRequest,
the ACS with its cross-site POST handled, state keyed by the request ID) and python3-saml checks
what an SP must: the signature of the response or the assertion (its reference must be the
signed element itself, one assertion only: signature wrapping), audience, destination and
recipient, NotBefore/NotOnOrAfter, and it refuses any DTD or entity (XXE). Its `xmlsec`
binding and lxml are pinned together in requirements.txt (both wheels embed the same libxml2;
a mismatch is refused at import). pysaml2 would have needed our own SP views, state and
allauth provider. What neither does, we do (federation/saml/views.py): an assertion is accepted
once (replay), and a response must answer a request of this browser unless the provider allows
IdP-initiated sign-in.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.providers.saml.utils import build_saml_config, prepare_django_request
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from onelogin.saml2.auth import OneLogin_Saml2_Auth

from federation.saml.metadata import certificate_bodies


def sp_entity_id(slug: str) -> str:
    """Our entity ID at the provider: the SP metadata URL on the issuer (not the Host header)."""
    return f"{settings.IDP_ISSUER}{reverse('saml_metadata', kwargs={'organization_slug': slug})}"


def acs_url(slug: str) -> str:
    return f"{settings.IDP_ISSUER}{reverse('saml_acs', kwargs={'organization_slug': slug})}"


def saml_settings(request: HttpRequest, provider: Any) -> dict[str, Any]:
    app = provider.app
    config = build_saml_config(request, app.settings, app.client_id)
    bodies = certificate_bodies(app.settings.get("certificates", ""))
    # Every published signing certificate (a provider rolling its key publishes two).
    config["idp"].pop("x509cert", None)
    config["idp"]["x509certMulti"] = {"signing": bodies}
    # No single logout from the upstream (federation/saml/views.py `sls`): not advertised.
    config["sp"].pop("singleLogoutService", None)
    return config


def build_auth(
    request: HttpRequest, provider: Any, *, received: dict[str, Any] | None = None
) -> OneLogin_Saml2_Auth:
    """python3-saml for `provider`; `received`: the ACS request kept by
    `federation.saml.views.acs` (python3-saml checks the Destination against its URL)."""
    request_data = prepare_django_request(request)
    if received is not None:
        request_data.update(
            https="on" if received.get("https") else "off",
            http_host=str(received.get("host", "")),
            script_name="",
            path_info=str(received.get("path", "")),
            get_data={},
            post_data=dict(received.get("post") or {}),
        )
    return OneLogin_Saml2_Auth(request_data, saml_settings(request, provider))
