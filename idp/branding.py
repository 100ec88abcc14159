"""Branding views: /branding.css (the admin's colour, without inline styles) and /button/
(the "Sign in with Company" button apps embed)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition, require_safe

from accounts.branding import branding_css as render_branding_css
from accounts.branding import get_branding

# base.html links /branding.css?v=<version>, so a change shows on the next page view; browsers
# and proxies may keep one version for a day and revalidate it cheaply with its ETag.
CSS_MAX_AGE = 24 * 3600


def _css_etag(request: HttpRequest) -> str:
    return get_branding().version


@login_not_required
@require_safe
@condition(etag_func=_css_etag)
def branding_css(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(render_branding_css(get_branding()), content_type="text/css")
    patch_cache_control(response, public=True, max_age=CSS_MAX_AGE)
    return response


@login_not_required
@require_safe
def button(request: HttpRequest) -> HttpResponse:
    """The sign-in button kit: preview, copy-paste HTML and CSS, light and dark logos."""
    # Unversioned absolute URLs: other sites embed them, so they must survive a redeploy (the
    # manifest storage keeps the original names next to the hashed ones).
    base = f"{settings.IDP_ISSUER}/{settings.STATIC_URL.strip('/')}/idp/button/"
    context = {
        "issuer": settings.IDP_ISSUER,
        "button_css_url": base + "button.css",
        "logo_light_url": base + "logo-light.svg",
        "logo_dark_url": base + "logo-dark.svg",
    }
    return render(request, "idp/button.html", context)
