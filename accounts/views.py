"""The security centre (/account/) around allauth's pages, admin login, branded error pages."""

from __future__ import annotations

from http import HTTPStatus
from typing import cast
from urllib.parse import urlencode

from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.decorators import reauthentication_required
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.views import ActivateTOTPView
from allauth.mfa.webauthn.views import AddWebAuthnView
from allauth.usersessions.adapter import get_adapter as get_usersessions_adapter
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_not_required, login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import mfa_policy, selectors, services
from accounts.adapter import is_safe_redirect, through_frontchannel_logout
from accounts.branding import as_context, get_branding
from accounts.forms import ProfileForm
from accounts.models import AuditEvent, User
from oauth_clients.models import Client


@login_not_required
def home(request: HttpRequest) -> HttpResponse:
    """The site root: the account page when signed in, the sign-in page otherwise."""
    if request.user.is_authenticated:
        return redirect("account_overview")
    return redirect("account_login")


# --- The security centre (/account/): allauth's pages underneath, ours on top ---------------

ACTIVITY_PER_PAGE = 20
OVERVIEW_ACTIVITY = 5


def _account(request: HttpRequest) -> User:
    """The signed-in user of a `login_required` view."""
    return cast(User, request.user)


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    """The signed-in landing page (LOGIN_REDIRECT_URL): every security setting in one place,
    each section linking to its detailed page."""
    user = _account(request)
    authenticators = {a.type: a for a in Authenticator.objects.filter(user_id=user.pk)}
    context = {
        "account_user": user,
        "emails": EmailAddress.objects.filter(user_id=user.pk).order_by("-primary", "email"),
        "has_usable_password": user.has_usable_password(),
        "password_changed_at": (
            AuditEvent.objects.filter(
                subject_id=user.pk,
                type__in=[AuditEvent.Type.PASSWORD_CHANGED, AuditEvent.Type.PASSWORD_RESET],
            )
            .values_list("created_at", flat=True)
            .first()
        ),
        "totp": authenticators.get(Authenticator.Type.TOTP),
        "security_keys": Authenticator.objects.filter(
            user_id=user.pk, type=Authenticator.Type.WEBAUTHN
        ).count(),
        "recovery_codes": authenticators.get(Authenticator.Type.RECOVERY_CODES),
        "mfa_required": mfa_policy.mfa_required(user),
        "sessions": selectors.active_sessions(
            user=user, current_session_key=request.session.session_key
        ),
        "apps": selectors.connected_apps(user=user),
        "activity": [
            selectors.describe_event(event)
            for event in selectors.security_activity(user=user)[:OVERVIEW_ACTIVITY]
        ],
    }
    return render(request, "account/overview.html", context)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """Edit the name the user goes by (shown to apps as the `name` claims)."""
    user = _account(request)
    form = ProfileForm(request.POST or None, instance=User.objects.get(pk=user.pk))
    if request.method == "POST" and form.is_valid():
        services.update_profile(
            user=user,
            first_name=form.cleaned_data["first_name"],
            last_name=form.cleaned_data["last_name"],
            request=request,
        )
        messages.success(request, _("Your name was saved."))
        return redirect("account_overview")
    return render(request, "account/profile.html", {"form": form})


@login_required
def connected_apps(request: HttpRequest) -> HttpResponse:
    """Every app the user let in, with what it may see and when it was last used."""
    return render(
        request,
        "account/connected_apps.html",
        {"apps": selectors.connected_apps(user=_account(request))},
    )


@login_required
@require_POST
def remove_connected_app(request: HttpRequest, client_pk: int) -> HttpResponse:
    """ "Remove access": consent forgotten, the app's tokens for this user revoked."""
    client = get_object_or_404(Client, pk=client_pk)
    if services.remove_connected_app(user=_account(request), client=client, request=request):
        messages.success(
            request,
            _("%(app)s no longer has access to your account.") % {"app": client.name},
        )
    return redirect("account_connected_apps")


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """The user's own security events, newest first, a page at a time."""
    page = Paginator(
        selectors.security_activity(user=_account(request)), ACTIVITY_PER_PAGE
    ).get_page(request.GET.get("page"))
    entries = [selectors.describe_event(event) for event in page.object_list]
    return render(request, "account/activity.html", {"page": page, "entries": entries})


@login_required
@require_POST
def end_session(request: HttpRequest, session_pk: int) -> HttpResponse:
    """Sign one browser out (allauth's flow; our adapter revokes that session's tokens)."""
    session = get_object_or_404(UserSession, pk=session_pk, user_id=request.user.pk)
    current = session.is_current()
    # allauth's own steps, through its adapters: end the session (ours revokes that session's
    # tokens, accounts/adapter.py), and sign this browser out when it was this one.
    get_usersessions_adapter().end_sessions([session])
    if current:
        get_account_adapter(request).logout(request)
        return redirect("account_login")
    messages.success(request, _("That session was signed out."))
    return redirect("usersessions_list")


@login_required
def mfa_required(request: HttpRequest) -> HttpResponse:
    """Where a user who must use a second factor is sent until they have one."""
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not is_safe_redirect(next_url):
        next_url = ""
    if not mfa_policy.must_enrol(request.user):
        return redirect(next_url or "account_overview")
    # Continuing to the admin would only bring the user back here.
    can_continue = bool(next_url) and not next_url.startswith(reverse("admin:index"))
    return render(
        request, "account/mfa_required.html", {"next_url": next_url if can_continue else ""}
    )


class _NextToRecoveryCodesMixin:
    """allauth sends a first second factor on to the recovery codes page, dropping `next`; the
    enrolment page's links carry it in their query (templates/account/mfa_required.html) and the
    forms post to the same URL. The codes page's Continue then leads there
    (templates/mfa/recovery_codes/index.html), when it is a target we follow."""

    request: HttpRequest

    def get_success_url(self) -> str:
        url = super().get_success_url()  # type: ignore[misc]
        next_url = self.request.GET.get(REDIRECT_FIELD_NAME, "")
        if url == reverse("mfa_view_recovery_codes") and is_safe_redirect(next_url):
            return f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"
        return url


class ActivateTOTPWithNextView(_NextToRecoveryCodesMixin, ActivateTOTPView):
    """allauth's authenticator app set-up (its checks: reauthentication, add allowed)."""


class AddWebAuthnWithNextView(_NextToRecoveryCodesMixin, AddWebAuthnView):
    """allauth's security key or passkey set-up (its checks: reauthentication, add allowed)."""


activate_totp = ActivateTOTPWithNextView.as_view()
add_webauthn = AddWebAuthnWithNextView.as_view()


class SignOutView(allauth_views.LogoutView):
    """allauth's sign-out. With a `next` (the consent page's "Not you?") allauth redirects
    straight there without asking the adapter's get_logout_redirect_url, which would skip the
    front-channel logout page: a safe `next` (allauth's check, our adapter's is_safe_url) passes
    through it too, so the session's apps are told before the browser moves on."""

    def get_redirect_url(self) -> str:
        next_url = self.get_next_url()
        if not next_url:
            return super().get_redirect_url()
        return through_frontchannel_logout(self.request, next_url)


sign_out = SignOutView.as_view()


# Sensitive changes (password, email addresses) need a recent authentication: allauth's views,
# asking for the password or a second factor again once ACCOUNT_REAUTHENTICATION_TIMEOUT has
# passed since the last sign-in (accounts.adapter.is_reauthentication_required).
password_change = login_required(
    reauthentication_required(allauth_views.password_change, app="accounts")
)
password_set = login_required(reauthentication_required(allauth_views.password_set, app="accounts"))


def _changes_an_address(request: HttpRequest) -> bool:
    """Adding, removing or making primary an address; resending a link is harmless."""
    return request.method == "POST" and any(
        action in request.POST for action in ("action_add", "action_remove", "action_primary")
    )


email = login_required(
    reauthentication_required(allauth_views.email, enabled=_changes_an_address, app="accounts")
)


@login_not_required
def password_reset_required(request: HttpRequest) -> HttpResponse:
    """Shown instead of a session when an administrator required a new password."""
    return render(request, "account/password_reset_required.html")


@login_not_required
def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin signs in through allauth's login: one sign-in page, one lock, one rate limit."""
    next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not is_safe_redirect(next_url):
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
