"""Template helpers for the house versions of allauth's pages: a checked `next`, the admin
gate's wording, and which second factors a user has."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from allauth.mfa.models import Authenticator
from django import template
from django.urls import reverse

from accounts.branding import get_branding

register = template.Library()


@register.filter
def safe_next(url: Any) -> str:
    """`url` when allauth's adapter would follow it (our `is_safe_url`: a path on this site or
    the issuer's origin), else ""."""
    if not isinstance(url, str) or not url:
        return ""
    return url if get_adapter().is_safe_url(url) else ""


@register.filter
def leads_to_admin(url: Any) -> bool:
    """`next` is a page of the administration, which needs a second factor in this session
    (accounts.middleware.StaffMFAMiddleware): the re-authentication pages say so."""
    url = safe_next(url)
    return bool(url) and url.startswith(reverse("admin:index"))


@register.filter
def second_factor_options(alternatives: Any) -> list[dict[str, Any]]:
    """allauth's re-authentication alternatives without the password: what satisfies a gate
    that needs a second factor (allauth's method ids of MFA start with "mfa_")."""
    return [alt for alt in alternatives or [] if str(alt.get("id", "")).startswith("mfa_")]


@register.filter
def has_security_key(user: Any) -> bool:
    """`user` has a security key or passkey (the sign-in's code step offers it only then)."""
    if user is None or getattr(user, "pk", None) is None:
        return False
    return Authenticator.objects.filter(user_id=user.pk, type=Authenticator.Type.WEBAUTHN).exists()


@register.simple_tag
def url_with_next(name: str, next_url: Any) -> str:
    """The URL named `name`, carrying `next` when it is one we follow (`safe_next`)."""
    url = reverse(name)
    checked = safe_next(next_url)
    return f"{url}?{urlencode({'next': checked})}" if checked else url


@register.simple_tag
def house_company(fallback: Any = "") -> str:
    """The company's name from Branding (which falls back to IDP_COMPANY_NAME when its cache
    and database cannot answer), for templates rendered without a request: allauth's emails,
    where no context processor runs."""
    return get_branding().company_name or str(fallback)
