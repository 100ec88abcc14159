"""The sign-in page's upstream providers (federation/sign_in_options.html), from the cache."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from federation.models import UpstreamProvider
from federation.selectors import sign_in_options

register = template.Library()


def login_url(*, slug: str, kind: str) -> str:
    """Where a provider's sign-in starts (allauth's login view of its provider)."""
    if kind == UpstreamProvider.Kind.GITHUB:
        return reverse("github_login")
    if kind == UpstreamProvider.Kind.SAML:
        return reverse("saml_login", kwargs={"organization_slug": slug})
    return reverse("upstream_login", kwargs={"provider_id": slug})


@register.simple_tag
def upstream_sign_in() -> dict[str, Any]:
    options = sign_in_options()
    return {
        "buttons": [
            {"name": option.name, "url": login_url(slug=option.slug, kind=option.kind)}
            for option in options
            if option.show_on_sign_in
        ],
        "discovery": any(option.domains for option in options),
    }
