"""The admin's "test connection": the provider's discovery document (a SAML provider's
metadata), fetched through the SSRF-safe sender as a sign-in would, and what it names (issuer
or entity ID, endpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from django.conf import settings
from django.core.exceptions import ValidationError

from federation.models import UpstreamProvider
from federation.providers import discovery_url, issuer_of, same_origin
from federation.saml.metadata import fetch_idp_metadata, read_idp_metadata
from oauth_clients.outbound import clean_text, safe_session

ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    error: str = ""
    issuer: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)


def check_saml(provider: UpstreamProvider) -> ConnectionReport:
    """A SAML provider's metadata read again (through the safe sender): does it still name
    the stored entity ID, sign-on URL and certificates?"""
    stored = {"single_sign_on": provider.saml_sso_url}
    if not provider.saml_metadata_url:
        return ConnectionReport(
            ok=False,
            error="No metadata URL: the values were given by hand or uploaded.",
            issuer=provider.saml_entity_id,
            endpoints=stored,
        )
    try:
        values = read_idp_metadata(
            fetch_idp_metadata(
                provider.saml_metadata_url,
                allow_private_network=provider.allow_private_network,
            )
        )
    except ValidationError as error:
        return ConnectionReport(ok=False, error=clean_text(" ".join(error.messages)))
    endpoints = {"single_sign_on": values.sso_url}
    if (values.entity_id, values.sso_url, values.certificate) != (
        provider.saml_entity_id,
        provider.saml_sso_url,
        provider.saml_certificate,
    ):
        return ConnectionReport(
            ok=False,
            error="The metadata changed since the provider was saved: save it again to use it.",
            issuer=values.entity_id,
            endpoints=endpoints,
        )
    return ConnectionReport(ok=True, issuer=values.entity_id, endpoints=endpoints)


def check_connection(provider: UpstreamProvider) -> ConnectionReport:
    if provider.kind == UpstreamProvider.Kind.SAML:
        return check_saml(provider)
    issuer = issuer_of(provider)
    if not issuer:
        return ConnectionReport(ok=False, error="GitHub publishes no discovery document.")
    session = safe_session(
        # The row as the administrator sees it, enabled or not yet.
        allow_private_network=lambda url: (
            provider.allow_private_network and same_origin(url, issuer)
        ),
        timeout=settings.IDP_UPSTREAM_TIMEOUT_SECONDS,
        max_bytes=1024 * 1024,
    )
    try:
        with session:
            response = session.get(discovery_url(issuer))
            response.raise_for_status()
            document = response.json()
    except (requests.RequestException, ValueError) as error:
        return ConnectionReport(ok=False, error=clean_text(str(error)))
    if not isinstance(document, dict):
        return ConnectionReport(ok=False, error="The discovery document is not a JSON object.")
    published = str(document.get("issuer", ""))
    endpoints = {name: str(document.get(name, "")) for name in ENDPOINTS}
    if published.rstrip("/") != issuer.rstrip("/"):
        return ConnectionReport(
            ok=False,
            error=clean_text(f"The document names issuer {published!r}, not {issuer!r}."),
            issuer=published,
            endpoints=endpoints,
        )
    missing = [name for name in ENDPOINTS[:2] + ENDPOINTS[3:] if not endpoints[name]]
    if missing:
        return ConnectionReport(
            ok=False,
            error=f"The document lacks {', '.join(missing)}.",
            issuer=published,
            endpoints=endpoints,
        )
    return ConnectionReport(ok=True, issuer=published, endpoints=endpoints)
