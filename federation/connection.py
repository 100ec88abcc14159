"""The admin's "test connection": the provider's discovery document, fetched through the
SSRF-safe sender as a sign-in would, and what it names (issuer, endpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests
from django.conf import settings

from federation.models import UpstreamProvider
from federation.providers import discovery_url, issuer_of, same_origin
from oauth_clients.outbound import clean_text, safe_session

ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    error: str = ""
    issuer: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)


def check_connection(provider: UpstreamProvider) -> ConnectionReport:
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
