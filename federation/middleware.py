"""Home-realm discovery on the main sign-in form: an address of a provider's domain typed there
goes to that provider, and its password (if any was typed) is never checked here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from federation.selectors import option_for_address
from federation.views import start_sign_in


class HomeRealmDiscoveryMiddleware:
    """After CSRF's check (`process_view`, and listed after CsrfViewMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.method != "POST" or request.path_info != reverse("account_login"):
            return None
        login = request.POST.get("login", "")
        if "@" not in login:
            return None
        option = option_for_address(login)
        if option is None:
            return None
        next_url = request.POST.get("next") or request.GET.get("next") or None
        return start_sign_in(request, slug=option.slug, next_url=next_url)
