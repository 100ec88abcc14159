"""allauth's social-account adapter (SOCIALACCOUNT_ADAPTER): our rules for upstream sign-in.

- allauth's apps are built from the enabled `UpstreamProvider` rows (never a stored SocialApp);
- every call to an upstream goes through the SSRF-safe sender (`oauth_clients.outbound`);
- the ID token's nonce is this sign-in's; a Google Workspace token is the company domain's;
- an unknown identity is linked to an account only through an address verified on both sides
  (the provider's and ours), never on an unverified one; an account is created just in time
  only when the provider may create them, for a verified address of its domains.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp, SocialLogin
from allauth.socialaccount.providers.base import AuthError, AuthProcess
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.shortcuts import render
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from federation import services
from federation.models import UpstreamProvider
from federation.providers import (
    enabled_provider,
    enabled_providers,
    may_use_private_network,
    social_app,
)
from federation.upstream.provider import NONCE_STATE_KEY
from oauth_clients.outbound import safe_session

# A discovery document, key set, token or userinfo answer is far below this.
MAX_ANSWER_BYTES = 1024 * 1024


def refuse(
    request: HttpRequest, *, slug: str, reason: str, message: str | Promise
) -> ImmediateHttpResponse:
    """The audited refusal of an upstream sign-in, and the branded page that says so."""
    services.record_refusal(request=request, slug=slug, reason=reason)
    response = render(
        request, "federation/refused.html", {"message": message}, status=HTTPStatus.FORBIDDEN
    )
    return ImmediateHttpResponse(response)


NOT_LINKED = gettext_lazy(
    "This identity is not linked to an account here. Sign in another way and link it from "
    "your account page, or ask your administrator."
)


def _lower(values: Any) -> set[str]:
    return {str(value).strip().lower() for value in values if value}


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    # --- Providers and the way out -----------------------------------------------------------

    def list_apps(
        self, request: HttpRequest | None, provider: Any = None, client_id: Any = None
    ) -> list[SocialApp]:
        apps = [social_app(row) for row in enabled_providers()]
        if provider:
            apps = [app for app in apps if provider in (app.provider, app.provider_id)]
        if client_id:
            apps = [app for app in apps if app.client_id == client_id]
        return apps

    def get_requests_session(self) -> Any:
        return safe_session(
            allow_private_network=may_use_private_network,
            timeout=settings.IDP_UPSTREAM_TIMEOUT_SECONDS,
            max_bytes=MAX_ANSWER_BYTES,
        )

    # --- Who may come in ---------------------------------------------------------------------

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        account = sociallogin.account
        slug = str(account.provider)
        provider = enabled_provider(slug)
        unavailable = _("This sign-in method is not available. Sign in another way.")
        if provider is None:
            raise refuse(request, slug=slug, reason="provider disabled", message=unavailable)
        # GitHub has no ID token; a SAML assertion was checked by federation/saml/views.py.
        if provider.kind not in (UpstreamProvider.Kind.GITHUB, UpstreamProvider.Kind.SAML):
            self._check_id_token(request, provider=provider, sociallogin=sociallogin)
        if sociallogin.is_existing:
            return
        verified = _lower(a.email for a in sociallogin.email_addresses if a.verified)
        if sociallogin.state.get("process") == AuthProcess.CONNECT:
            # Linking from the security centre: the identity's verified address must be one
            # of the signed-in person's verified addresses.
            mine = _lower(
                EmailAddress.objects.filter(user_id=request.user.pk, verified=True).values_list(
                    "email", flat=True
                )
            )
            if not verified & mine:
                raise refuse(
                    request,
                    slug=slug,
                    reason="link refused: no address verified on both sides",
                    message=_(
                        "This identity can be linked only when the provider has verified one "
                        "of your verified addresses."
                    ),
                )
            return
        self._link_or_create(request, provider=provider, sociallogin=sociallogin, verified=verified)

    def _check_id_token(
        self, request: HttpRequest, *, provider: UpstreamProvider, sociallogin: SocialLogin
    ) -> None:
        claims = services.id_token_claims(sociallogin.account)
        expected = sociallogin.state.get(NONCE_STATE_KEY)
        got = claims.get("nonce")
        # OIDC Core §3.1.3.7 step 11: the nonce sent with this browser's request.
        if not expected or not isinstance(got, str) or not constant_time_compare(got, expected):
            raise refuse(
                request,
                slug=provider.slug,
                reason="nonce mismatch",
                message=_("The sign-in could not be completed. Try again."),
            )
        google = provider.kind == UpstreamProvider.Kind.GOOGLE and provider.tenant
        if google and str(claims.get("hd", "")).lower() != provider.tenant.strip().lower():
            raise refuse(
                request,
                slug=provider.slug,
                reason="Google account outside the company domain",
                message=_("Sign in with your company account."),
            )

    def _link_or_create(
        self,
        request: HttpRequest,
        *,
        provider: UpstreamProvider,
        sociallogin: SocialLogin,
        verified: set[str],
    ) -> None:
        slug = provider.slug
        if verified:
            owners = set(
                EmailAddress.objects.filter(email__in=verified, verified=True).values_list(
                    "user_id", flat=True
                )
            )
            # Same-case lookups first (the usual case), then any case.
            if not owners:
                for email in verified:
                    owners |= set(
                        EmailAddress.objects.filter(email__iexact=email, verified=True).values_list(
                            "user_id", flat=True
                        )
                    )
            if len(owners) == 1:
                # Verified here and at the provider: the same person (the link is audited by
                # federation.receivers, from allauth's signal).
                user = get_user_model().objects.get(pk=next(iter(owners)))
                if not user.is_active:
                    raise refuse(request, slug=slug, reason="account inactive", message=NOT_LINKED)
                sociallogin.connect(request, user)
                return
        addresses = _lower(a.email for a in sociallogin.email_addresses)
        if addresses and self._address_taken(addresses):
            # An account has this address, unverified here or at the provider: never linked.
            raise refuse(
                request,
                slug=slug,
                reason="address not verified on both sides",
                message=NOT_LINKED,
            )
        if not provider.create_accounts:
            raise refuse(request, slug=slug, reason="no linked account", message=NOT_LINKED)
        if not verified:
            raise refuse(
                request,
                slug=slug,
                reason="address not verified by the provider",
                message=NOT_LINKED,
            )
        if provider.domains and not any(provider.serves_address(email) for email in verified):
            raise refuse(
                request,
                slug=slug,
                reason="address outside the provider's domains",
                message=NOT_LINKED,
            )

    @staticmethod
    def _address_taken(addresses: set[str]) -> bool:
        for email in addresses:
            if EmailAddress.objects.filter(email__iexact=email).exists():
                return True
            if get_user_model().objects.filter(email__iexact=email).exists():
                return True
        return False

    # --- Accounts created just in time ---------------------------------------------------------

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        provider = enabled_provider(str(sociallogin.account.provider))
        return bool(provider and provider.create_accounts)

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return True

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict) -> Any:
        user = super().populate_user(request, sociallogin, data)
        provider = UpstreamProvider.objects.filter(slug=sociallogin.account.provider).first()
        if provider is None:
            return user
        claims = services.upstream_claims(sociallogin.account)
        for field, claim in (
            ("first_name", provider.first_name_claim),
            ("last_name", provider.last_name_claim),
        ):
            value = claims.get(claim) if claim else None
            if isinstance(value, str) and value.strip():
                setattr(user, field, value.strip()[:150])
        wanted = claims.get(provider.username_claim) if provider.username_claim else None
        # allauth takes a username it finds set as valid and unique: the claim's value only
        # when it is both, else allauth's unique name made from it (or the address, "user").
        user.username = ""
        if isinstance(wanted, str) and wanted.strip():
            wanted = wanted.strip()
            user_model = get_user_model()
            try:
                user_model.username_validator(wanted)  # type: ignore[attr-defined]
                valid = len(wanted) <= 150
            except ValidationError:
                valid = False
            if valid and not user_model.objects.filter(username__iexact=wanted).exists():
                user.username = wanted
            else:
                user.username = get_account_adapter(request).generate_unique_username(
                    [wanted, user.email, "user"]
                )
        return user

    def save_user(self, request: HttpRequest, sociallogin: SocialLogin, form: Any = None) -> Any:
        user = super().save_user(request, sociallogin, form)
        services.record_created(request=request, user=user, slug=str(sociallogin.account.provider))
        return user

    def get_connect_redirect_url(self, request: HttpRequest, socialaccount: Any) -> str:
        return reverse("federation_identities")

    # --- Errors ------------------------------------------------------------------------------

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        # Every failed upstream sign-in (a state that is not this browser's, an ID token
        # refused, a provider that did not answer) is audited and answered with our page.
        slug = ""
        app = getattr(provider, "app", None)
        if app is not None:
            slug = str(app.provider_id or app.provider)
        reason = str(exception) if exception is not None else str(error or "unknown")
        if error == AuthError.CANCELLED:
            message = _("The sign-in was cancelled at the provider.")
        else:
            message = _("The sign-in could not be completed. Try again or sign in another way.")
        raise refuse(request, slug=slug, reason=reason, message=message)
