"""The signed-out page of OpenID Connect Front-Channel Logout 1.0 (§3): GET /o/logged-out/.

Reached by redirect after a sign-out whose session had apps with a front-channel logout URI
(`oauth_clients.oidc.frontchannel`); renders their URIs in hidden frames and moves on. Only this
response may frame those apps: its own CSP `frame-src`, never the global policy.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from oauth_clients.oidc.frontchannel import frame_origins, read_logged_out

MAX_PARAMETER_LENGTH = 4096


@login_not_required
@never_cache
@require_GET
def logged_out(request: HttpRequest) -> HttpResponse:
    value = request.GET.get("t", "")
    found = read_logged_out(value) if 0 < len(value) <= MAX_PARAMETER_LENGTH else None
    if found is None:
        # A stale or forged link: the user is signed out anyway; nothing to frame.
        return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))
    frames, next_url = found
    response = render(
        request, "oauth2_provider/logged_out.html", {"frames": frames, "next_url": next_url}
    )
    if frames:
        # django-csp reads this per response (what its csp_update decorator sets).
        response._csp_update = {"frame-src": frame_origins(frames)}  # type: ignore[attr-defined]
    return response
