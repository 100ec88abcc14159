"""Home-realm discovery on the main sign-in form: an address of a provider's domain typed there
goes to that provider, and its password (if any was typed) is never checked here; and the same
for an app's hint (`login_hint`, `kc_idp_hint`) when the page serves its authorization
request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.signin_request import authorize_parameter
from accounts.templatetags.signin_app import signin_app
from federation.selectors import option_for_address, option_for_hints
from federation.views import start_sign_in

# The longest hint read: an address (RFC 5321's 254) or a provider's slug (SlugField's 50).
HINT_MAX_LENGTH = 254


def hinted_sign_in(request: HttpRequest) -> HttpResponse | None:
    """The sign-in page reached from an app's authorization request that names an upstream
    provider, by `kc_idp_hint` or by its `login_hint`'s domain: straight to that provider, back
    to the authorization request afterwards (Keycloak's `kc_idp_hint` does the same).

    Only for a registered, active app's request: that app asked, the person comes back to its
    registered redirect URI, and the upstream's answer is bound to this browser's session by
    allauth's `state`, as a typed address's is. A sign-in page linked from elsewhere with a
    hint in a made-up `next` starts nothing (the buttons stay POST-only,
    tests/federation/test_sign_in_page.py)."""
    next_url = request.GET.get("next", "")
    idp_hint = authorize_parameter(next_url, "kc_idp_hint", max_length=HINT_MAX_LENGTH)
    login_hint = authorize_parameter(next_url, "login_hint", max_length=HINT_MAX_LENGTH)
    if not idp_hint and "@" not in login_hint:
        return None
    option = option_for_hints(idp_hint=idp_hint, login_hint=login_hint)
    if option is None:
        return None
    if signin_app(next_url) is None:  # the active registered app, from the client cache
        return None
    return start_sign_in(request, slug=option.slug, next_url=next_url)


class HomeRealmDiscoveryMiddleware:
    """After CSRF's check (`process_view`, and listed after CsrfViewMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.path_info != reverse("account_login"):
            return None
        if request.method == "GET":
            return hinted_sign_in(request)
        if request.method != "POST":
            return None
        login = request.POST.get("login", "")
        if "@" not in login:
            return None
        option = option_for_address(login)
        if option is None:
            return None
        next_url = request.POST.get("next") or request.GET.get("next") or None
        return start_sign_in(request, slug=option.slug, next_url=next_url)
