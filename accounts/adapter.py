"""allauth adapters: our policy hooks into allauth's flows (never a fork of the flows)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import mfa_policy, services
from accounts.backends import SignInSourceUnavailable
from accounts.branding import get_branding
from accounts.models import User
from accounts.selectors import users_for_credentials
from accounts.sessions import get_sid
from oauth_clients.oidc.signout import logged_out_url

# --- The issuer's origin: where emailed links point and where `next` may lead --------------------


def _issuer() -> tuple[str, str]:
    """The configured issuer's scheme and host[:port] (IDP_ISSUER, the single source of truth)."""
    issuer = urlsplit(settings.IDP_ISSUER)
    return issuer.scheme, issuer.netloc


def on_issuer(url: str) -> str:
    """`url`'s path, query and fragment on the issuer's origin.

    allauth builds emailed links with `request.build_absolute_uri()`, so the Host header (any
    ALLOWED_HOSTS alias, any port: Django checks the host without its port) would choose where a
    reset link and its key go (CWE-640; OWASP ASVS 5.0 V6.4.3).
    """
    parts = urlsplit(url)
    return urlunsplit((*_issuer(), parts.path, parts.query, parts.fragment))


def is_safe_redirect(url: str | None) -> bool:
    """A redirect target we follow: a path from this site's root, or the issuer's own origin
    exactly (scheme, host and port). Never another alias of the host, another scheme (an https
    issuer downgraded to http) or another port, whatever Host the request came with."""
    if not url:
        return False
    scheme, netloc = _issuer()
    # Django's checks first: control characters, backslashes, "///" and other browser quirks.
    if not url_has_allowed_host_and_scheme(
        url, allowed_hosts={netloc}, require_https=scheme == "https"
    ):
        return False
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        # A path relative to the current page is not one we chose; "//" and "/\\" are hosts.
        return url.startswith("/") and not url.startswith(("//", "/\\"))
    return (parts.scheme, parts.netloc) == (scheme, netloc)


def through_frontchannel_logout(request: HttpRequest, url: str) -> str:
    """Where a sign-out of this browser session goes: our signed-out page first when an app of
    the session registered a front-channel logout URI (oauth_clients/oidc/frontchannel.py, which
    then continues to `url`), else `url`. Call it before the session ends."""
    return logged_out_url(sid=get_sid(request), next_url=url) or url


@dataclass(frozen=True)
class IssuerSite:
    """What allauth's emails name as the site (`current_site`): without django.contrib.sites it
    would be the request's Host header."""

    name: str
    domain: str


# Links allauth puts in its emails' context: the reset key (or the reset page), the
# verification key, the sign-up page.
EMAILED_LINKS = ("password_reset_url", "activate_url", "signup_url")


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        # Self sign-up is closed by default; IDP_SIGNUP_OPEN=1 opens it (email verification stays
        # mandatory through ACCOUNT_EMAIL_VERIFICATION).
        return bool(settings.IDP_SIGNUP_OPEN)

    def get_login_stages(self) -> list[str]:
        stages = super().get_login_stages()
        return [
            "accounts.stages.TrustedAccountEmailVerificationStage"
            if stage == "allauth.account.stages.EmailVerificationStage"
            else stage
            for stage in stages
        ]

    # --- Password sign-in: the per-account lock on top of allauth's rate limits ---------------

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        try:
            user = super().authenticate(request, **credentials)
        except SignInSourceUnavailable as unavailable:
            # The sign-in form (a form-wide error) and the password re-authentication (the
            # password field's) both call this: the person is told, nothing is counted.
            raise ValidationError(unavailable.message, code="source_unavailable") from None
        if user is not None and getattr(user, "is_locked", lambda: False)():
            # allauth hands back a user whose password matched but whom the backend refused
            # (to show the "inactive" page). A locked account gets the wrong-password answer
            # instead: the lock must not reveal that the password was right.
            services.record_failed_login(request=request, users=[user], reason="locked")  # type: ignore[list-item]
            return None
        return user

    def authentication_failed(self, request: HttpRequest, **credentials: Any) -> None:
        users = users_for_credentials(credentials)
        reason = "bad_password" if users else "unknown_account"
        if users and all(user.is_locked() for user in users):
            reason = "locked"
        services.record_failed_login(request=request, users=users, reason=reason)

    def pre_login(self, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> Any:
        response = super().pre_login(request, user, **kwargs)
        if response is not None:
            # allauth refused the sign-in (inactive account).
            services.record_failed_login(request=request, users=[user], reason="inactive")  # type: ignore[list-item]
            return response
        if getattr(user, "password_reset_required", False):
            # An administrator forced a reset: the old password no longer opens a session, and
            # nothing of this attempt (allauth's record of the password step) stays in it.
            request.session.flush()
            services.record_failed_login(
                request=request,
                users=[user],  # type: ignore[list-item]
                reason="password_reset_required",
            )
            return redirect("account_password_reset_required")
        return None

    def post_login(self, request: HttpRequest, user: AbstractBaseUser, **kwargs: Any) -> Any:
        response = super().post_login(request, user, **kwargs)
        if mfa_policy.must_enrol(user) and isinstance(response, HttpResponseRedirect):
            # Staff without a second factor: guided to set one up right after signing in
            # (the admin is closed to them until then), then on to where they were going.
            query = urlencode({"next": response.url})
            return HttpResponseRedirect(f"{reverse('account_mfa_required')}?{query}")
        return response

    # --- Sensitive actions: a recent authentication ----------------------------------------

    def is_reauthentication_required(self, *, app: str, **kwargs: Any) -> bool:
        # allauth counts only explicit re-authentications; a sign-in within
        # ACCOUNT_REAUTHENTICATION_TIMEOUT is just as recent (the password, and any second
        # factor, were typed a moment ago).
        if not super().is_reauthentication_required(app=app, **kwargs):
            return False
        return not mfa_policy.recently_authenticated(self.request or context.request)

    def get_logout_redirect_url(self, request: HttpRequest) -> str:
        # Asked before the sign-out (allauth's LogoutView): apps of this session with a
        # front-channel logout URI are signed out by our signed-out page on the way.
        # A sign-out carrying `next` never asks this: accounts.views.SignOutView.
        return through_frontchannel_logout(request, super().get_logout_redirect_url(request))

    def is_safe_url(self, url: str | None) -> bool:
        # allauth's check for every `next` (sign-in, sign-out, re-authentication, two-step pages)
        # accepts any scheme and port of any host in ALLOWED_HOSTS ("testserver" in debug).
        return is_safe_redirect(url)

    # --- Emails -------------------------------------------------------------------------------

    def format_email_subject(self, subject: str) -> str:
        # Emails carry the company's name, not the host name (no django.contrib.sites here):
        # the administrator's Branding, as the body's greeting and sign-off do
        # (templates/account/email/base_message.txt), IDP_COMPANY_NAME when it cannot be read.
        return f"[{get_branding().company_name}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context: dict[str, Any]) -> None:
        # Every email allauth sends passes here, its links already built on the request's host:
        # the links and the site the email names are moved onto the issuer.
        context = {
            **context,
            "current_site": IssuerSite(name=get_branding().company_name, domain=_issuer()[1]),
            # The unknown-account email offers sign-up only when it is open.
            "signup_open": self.is_open_for_signup(self.request),
        }
        for key in EMAILED_LINKS:
            if isinstance(context.get(key), str):
                context[key] = on_issuer(context[key])
        super().send_mail(template_prefix, email, context)

    # --- Passwords ------------------------------------------------------------------------

    def set_password(self, user: AbstractBaseUser, password: str) -> None:
        # Used by allauth's change, set and reset flows: a user-chosen password satisfies a
        # forced reset.
        services.set_password(user=user, password=password)  # type: ignore[arg-type]

    def send_password_reset_mail(
        self, user: AbstractBaseUser, email: str, context: dict[str, Any]
    ) -> None:
        services.record_password_reset_requested(request=context.get("request"), user=user)  # type: ignore[arg-type]
        super().send_password_reset_mail(user, email, context)


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """allauth's session list ends sessions through our service: each session's tokens (by its
    sid) are revoked with it, and the sign-out is audited (USERSESSIONS_ADAPTER)."""

    def end_sessions(self, sessions: Any) -> None:
        by_user: dict[Any, list[str]] = defaultdict(list)
        for session in sessions:
            by_user[session.user_id].append(session.session_key)
        for user_id, session_keys in by_user.items():
            services.end_sessions(
                user=User.objects.get(pk=user_id),
                session_keys=session_keys,
                request=context.request,
                reason="signed_out_by_user",
            )
