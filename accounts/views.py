"""Views for the account pages that allauth does not provide, and the branded error pages."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlencode

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required, login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts.branding import as_context, get_branding


@login_not_required
def home(request: HttpRequest) -> HttpResponse:
    """The site root: the account page when signed in, the sign-in page otherwise."""
    if request.user.is_authenticated:
        return redirect("account_overview")
    return redirect("account_login")


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The signed-in landing page (LOGIN_REDIRECT_URL): who you are and where to manage it."""
    return render(request, "account/overview.html", {"account_user": request.user})


@login_not_required
def password_reset_required(request: HttpRequest) -> HttpResponse:
    """Shown instead of a session when an administrator required a new password."""
    return render(request, "account/password_reset_required.html")


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin signs in through allauth's login: one sign-in page, one lock, one rate limit."""
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("admin:index")
    if request.user.is_authenticated:
        if request.user.is_staff:
            return redirect(next_url)
        # Signed in without admin access: the admin would send us here again and again.
        raise PermissionDenied(_("Your account has no access to the administration."))
    return redirect(f"{reverse('account_login')}?{urlencode({REDIRECT_FIELD_NAME: next_url})}")


# --- Error pages: one branded layout, never a stack trace -------------------------------------


def _branding() -> dict[str, str]:
    # The cached admin branding, else the settings: never the database (it may be what failed).
    return as_context(get_branding(use_database=False))


def _error_page(
    request: HttpRequest, status: HTTPStatus, template: str, message: str = ""
) -> HttpResponse:
    body = loader.render_to_string(template, {"status": status, "message": message}, request)
    return HttpResponse(body, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, HTTPStatus.BAD_REQUEST, "400.html")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    # Only messages we wrote ourselves reach the page (PermissionDenied with a plain string).
    message = str(exception) if isinstance(exception, PermissionDenied) and exception.args else ""
    return _error_page(request, HTTPStatus.FORBIDDEN, "403.html", message)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error_page(request, HTTPStatus.NOT_FOUND, "404.html")


def server_error(request: HttpRequest) -> HttpResponse:
    # Rendered without the request: context processors (and the database behind `user`) may be
    # what failed.
    body = loader.render_to_string("500.html", {**_branding(), "status": 500})
    return HttpResponse(body, status=HTTPStatus.INTERNAL_SERVER_ERROR)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the form was stale or not ours; say so in our layout."""
    return _error_page(
        request,
        HTTPStatus.FORBIDDEN,
        "403.html",
        _(
            "This form has expired or did not come from this site. Go back, reload the page "
            "and try again."
        ),
    )
