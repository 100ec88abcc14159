"""Starting an upstream sign-in from our sign-in page: by a provider's button, or by the address
typed (home-realm discovery: an address of a provider's domain goes to that provider, any other
address signs in here as before)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from http import HTTPStatus
from urllib.parse import urlencode

import requests
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.decorators import reauthentication_required
from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.models import SocialAccount, SocialApp
from allauth.socialaccount.providers.base import AuthProcess
from allauth.socialaccount.providers.github import views as github
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from federation import services
from federation.models import UpstreamProvider
from federation.selectors import option_for_address, sign_in_options
from federation.services import upstream_claims
from federation.templatetags.federation import login_url


def unavailable(request: HttpRequest, *, status: int = HTTPStatus.BAD_REQUEST) -> HttpResponse:
    """The provider is unknown, disabled, or did not answer: the branded page, never a 500."""
    return render(request, "federation/unavailable.html", status=status)


def _available_only(view: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """allauth's view of a provider without an app answers with the not-available page: its
    OAuth 2 views ask for the app first and let SocialApp.DoesNotExist escape (a 500) when no
    enabled provider of ours is of that kind, as federation/upstream/views.py does for ours."""

    @functools.wraps(view)
    def available_only(request: HttpRequest) -> HttpResponse:
        try:
            return view(request)
        except SocialApp.DoesNotExist:
            return unavailable(request)

    return available_only


# allauth's GitHub sign-in and callback (allauth.socialaccount.providers.github), at allauth's
# paths and names (idp/urls.py puts them before allauth's own).
github_login = require_http_methods(["GET", "POST"])(_available_only(github.oauth2_login))
github_callback = require_http_methods(["GET", "POST"])(_available_only(github.oauth2_callback))


def start_sign_in(request: HttpRequest, *, slug: str, next_url: str | None) -> HttpResponse:
    """Off to provider `slug`'s authorization endpoint, coming back to `next_url` (when safe)."""
    try:
        provider = get_adapter(request).get_provider(request, provider=slug)
    except SocialApp.DoesNotExist:
        return unavailable(request)
    if not get_account_adapter(request).is_safe_url(next_url):
        next_url = None
    try:
        return provider.redirect(request, AuthProcess.LOGIN, next_url=next_url)  # type: ignore[no-any-return]
    except requests.RequestException:
        # The provider's configuration could not be read (federation.upstream reads it first).
        return unavailable(request, status=HTTPStatus.BAD_GATEWAY)


def _back_to_sign_in(next_url: str) -> HttpResponseRedirect:
    url = reverse("account_login")
    if next_url:
        url = f"{url}?{urlencode({'next': next_url})}"
    return HttpResponseRedirect(url)


@require_POST
def discover(request: HttpRequest) -> HttpResponse:
    """The "sign in with your organisation" form: its address names the provider."""
    email = request.POST.get("email", "")[:254]
    next_url = request.POST.get("next", "")
    option = option_for_address(email)
    if option is None:
        messages.info(
            request,
            _("No company sign-in serves this address: sign in with your password."),
        )
        return _back_to_sign_in(
            next_url if get_account_adapter(request).is_safe_url(next_url) else ""
        )
    return start_sign_in(request, slug=option.slug, next_url=next_url)


@login_required
def identities(request: HttpRequest) -> HttpResponse:
    """The security centre's linked identities: each with its provider, and the providers a
    person may link (allauth's connect flow, `process=connect`)."""
    accounts = list(SocialAccount.objects.filter(user_id=request.user.pk).order_by("date_joined"))
    names = dict(UpstreamProvider.objects.values_list("slug", "name"))
    linked = [
        {
            "account": account,
            "provider": names.get(account.provider, account.provider),
            "email": upstream_claims(account).get("email", ""),
        }
        for account in accounts
    ]
    linkable = [
        {"name": option.name, "url": login_url(slug=option.slug, kind=option.kind)}
        for option in sign_in_options()
    ]
    return render(request, "federation/identities.html", {"linked": linked, "linkable": linkable})


@require_POST
@login_required
@reauthentication_required(app="federation")
def remove_identity(request: HttpRequest, account_pk: int) -> HttpResponse:
    account = get_object_or_404(SocialAccount, pk=account_pk, user_id=request.user.pk)
    try:
        services.remove_identity(user=request.user, account=account, request=request)  # type: ignore[arg-type]
    except services.IdentityRemovalRefused:
        messages.error(
            request,
            _(
                "This is your only way to sign in: set a password or link another identity "
                "before removing it."
            ),
        )
    else:
        messages.success(request, _("The identity was removed."))
    return HttpResponseRedirect(reverse("federation_identities"))
