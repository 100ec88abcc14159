"""What allauth needs of our provider rows: its app (`SocialApp`, built, never stored), the
provider for a sign-in address (home-realm discovery), and which upstream URLs may be private.

Entra ID, Google Workspace and Okta are OpenID Connect providers: their presets are our
OpenID Connect provider (`federation.upstream`, the ID token's signature always verified, a
nonce, `amr` and `groups` read from it) at the issuer each publishes. GitHub has no ID token for
people: allauth's `github` provider (its verified addresses read from GitHub's API).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from allauth.socialaccount.models import SocialApp

from federation.models import UpstreamProvider
from federation.secrets import decrypt_secret

# allauth's provider ids (the `provider` of a SocialApp).
OIDC_PROVIDER_ID = "upstream"
GITHUB_PROVIDER_ID = "github"
SAML_PROVIDER_ID = "saml"

GOOGLE_ISSUER = "https://accounts.google.com"
ENTRA_ISSUER = "https://login.microsoftonline.com/{tenant}/v2.0"


def issuer_of(provider: UpstreamProvider) -> str:
    """The OpenID Connect issuer of `provider` ("" for GitHub, which has none)."""
    kind = UpstreamProvider.Kind
    if provider.kind == kind.ENTRA:
        return ENTRA_ISSUER.format(tenant=provider.tenant.strip())
    if provider.kind == kind.GOOGLE:
        return GOOGLE_ISSUER
    if provider.kind in (kind.GITHUB, kind.SAML):
        return ""
    return provider.issuer.rstrip("/")


def discovery_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0 §4: the configuration document of `issuer`."""
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


def social_app(provider: UpstreamProvider) -> SocialApp:
    """allauth's app for `provider` (unsaved: allauth reads it, nothing stores it)."""
    kind = UpstreamProvider.Kind
    if provider.kind == kind.SAML:
        return saml_app(provider)
    if provider.kind == kind.GITHUB:
        settings: dict = {"scope": ["read:user", "user:email"], "oauth_pkce_enabled": True}
        allauth_provider = GITHUB_PROVIDER_ID
    else:
        auth_params: dict[str, str] = {}
        if provider.kind == kind.GOOGLE and provider.tenant:
            # Google's account chooser offers only the company's accounts; the ID token's `hd`
            # claim is still checked (federation.adapter), the parameter alone proves nothing.
            auth_params["hd"] = provider.tenant.strip()
        settings = {
            "server_url": issuer_of(provider),
            "scope": provider.scope_list,
            "auth_params": auth_params,
            "oauth_pkce_enabled": True,
        }
        allauth_provider = OIDC_PROVIDER_ID
    return SocialApp(
        provider=allauth_provider,
        provider_id=provider.slug,
        name=provider.name,
        client_id=provider.client_id,
        secret=decrypt_secret(provider.client_secret_encrypted),
        settings=settings,
    )


def saml_app(provider: UpstreamProvider) -> SocialApp:
    """allauth's SAML app: its `client_id` is the identifier in allauth's SAML URLs."""
    from federation.saml.auth import sp_entity_id
    from federation.saml.metadata import certificate_bodies

    bodies = certificate_bodies(provider.saml_certificate)

    def names(attribute: str) -> list[str]:
        return [attribute] if attribute else []

    settings = {
        "idp": {
            "entity_id": provider.saml_entity_id,
            "sso_url": provider.saml_sso_url,
            "x509cert": bodies[0] if bodies else "",
        },
        "sp": {"entity_id": sp_entity_id(provider.slug)},
        "certificates": provider.saml_certificate,
        "asserts_verified_email": provider.asserts_verified_email,
        "attribute_mapping": {
            "email": names(provider.email_attribute),
            "email_verified": ["email_verified"],
            "first_name": names(provider.first_name_claim),
            "last_name": names(provider.last_name_claim),
            "username": names(provider.username_claim),
        },
        "advanced": {
            "strict": True,
            "reject_idp_initiated_sso": not provider.allow_unsolicited,
            "want_attribute_statement": False,
            "reject_deprecated_algorithm": True,
        },
    }
    return SocialApp(
        provider=SAML_PROVIDER_ID,
        provider_id=provider.slug,
        name=provider.name,
        client_id=provider.slug,
        secret="",
        settings=settings,
    )


def enabled_providers() -> list[UpstreamProvider]:
    return list(UpstreamProvider.objects.filter(enabled=True))


def enabled_provider(slug: str) -> UpstreamProvider | None:
    return UpstreamProvider.objects.filter(enabled=True, slug=slug).first()


def provider_for_address(email: str) -> UpstreamProvider | None:
    """The enabled provider that serves `email`'s domain (home-realm discovery), if any."""
    for provider in enabled_providers():
        if provider.serves_address(email):
            return provider
    return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def same_origin(url: str, other: str) -> bool:
    return _origin(url) == _origin(other)


def may_use_private_network(url: str) -> bool:
    """Whether `url` may be on a private or loopback address: only on the origin of an enabled
    provider an administrator allowed it for (`UpstreamProvider.allow_private_network`)."""
    origin = _origin(url)
    return any(
        _origin(issuer_of(provider)) == origin
        for provider in UpstreamProvider.objects.filter(enabled=True, allow_private_network=True)
    )
