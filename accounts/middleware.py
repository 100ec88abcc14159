"""The admin's second-factor gate, allauth's session activity tracking at most once a minute, and
the account pages kept out of every cache."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from allauth.usersessions import app_settings as usersessions_settings
from allauth.usersessions.models import UserSession
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _

from accounts import mfa_policy
from accounts.sessions import activity_recorded_recently, mark_activity_recorded


class StaffMFAMiddleware:
    """Staff and superusers reach /admin/ only after a second factor in this session.

    Without one enrolled they are sent to set one up; with one enrolled but a password-only
    session, to allauth's re-authentication with it (then back). Runs after allauth's
    AccountMiddleware (request context) and Django's AuthenticationMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._guards(request):
            user = request.user
            if mfa_policy.must_enrol(user):
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{reverse('account_mfa_required')}?{query}")
            if mfa_policy.mfa_required(user) and not mfa_policy.session_used_second_factor(request):
                target = mfa_policy.second_factor_url(request, next_url=request.get_full_path())
                if target is None:  # enrolled, yet no way to use it: never let it through
                    raise PermissionDenied(_("The administration needs two-step verification."))
                return HttpResponseRedirect(target)
        return self.get_response(request)

    @staticmethod
    def _guards(request: HttpRequest) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False
        admin_root = reverse("admin:index")
        return request.path.startswith(admin_root) and request.path != reverse("admin:logout")


class SessionActivityMiddleware:
    """allauth's `UserSessionsMiddleware` (USERSESSIONS_TRACK_ACTIVITY), throttled.

    allauth's middleware refreshes the session's `UserSession` row on every signed-in request:
    a SELECT of the row, one of its user and an UPDATE of every column (half the queries of the
    authorization request that follows a sign-in). Here the row is refreshed through the same
    allauth call when it is older than ACTIVITY_INTERVAL_SECONDS or the client's address or
    browser changed (so allauth's `session_client_changed` still fires at once); the sign-in
    itself writes the row (`services.record_user_session`, on allauth's `user_logged_in`).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            usersessions_settings.TRACK_ACTIVITY
            and hasattr(request, "session")
            and request.session.session_key
            and hasattr(request, "user")
            and request.user.is_authenticated
            and not activity_recorded_recently(request)
        ):
            UserSession.objects.create_from_request(request)
            mark_activity_recorded(request)
        return self.get_response(request)


class AccountPagesNoStoreMiddleware:
    """Every page of the account flows is sent `Cache-Control: no-store, private` (with
    Django's other never-cache directives).

    The pages of allauth's views (sign-in, password, email addresses, two-step verification,
    sessions) and of ours (`accounts.views`: the security centre, connected apps, activity)
    show personal data or carry a form's CSRF token; a shared proxy or the browser's
    back/forward history must not keep them (OWASP ASVS 5.0 V14.3.2). Chosen by the view that
    answered (`request.resolver_match`), so a page added to either app is covered without a
    list of paths; the protocol endpoints and public documents (discovery, JWKS, the button
    kit) keep their own caching.
    """

    VIEW_MODULES = ("allauth.", "accounts.")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = request.resolver_match
        if match is not None and getattr(match.func, "__module__", "").startswith(
            self.VIEW_MODULES
        ):
            add_never_cache_headers(response)
        return response
