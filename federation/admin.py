"""Upstream providers in the admin: changed through `federation.services` (audited), the client
secret write-only, a "test connection" action. allauth's own SocialApp admin (which shows the
secret) and token admin are removed: neither table is used."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from federation import services
from federation.connection import check_connection
from federation.forms import UpstreamProviderForm
from federation.models import UpstreamProvider
from federation.providers import GITHUB_PROVIDER_ID
from federation.saml.auth import acs_url, sp_entity_id

import_module("allauth.socialaccount.admin")
for _model in (SocialApp, SocialToken, SocialAccount):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


def redirect_uri(provider: UpstreamProvider) -> str:
    """The redirect URI to register at the provider (on the issuer's origin); for SAML, the
    ACS URL and our entity ID (the SP metadata URL)."""
    if provider.kind == UpstreamProvider.Kind.SAML:
        return f"{acs_url(provider.slug)} (entity ID {sp_entity_id(provider.slug)})"
    if provider.kind == UpstreamProvider.Kind.GITHUB:
        path = reverse(f"{GITHUB_PROVIDER_ID}_callback")
    else:
        path = reverse("upstream_callback", kwargs={"provider_id": provider.slug})
    return f"{settings.IDP_ISSUER}{path}"


@admin.register(UpstreamProvider)
class UpstreamProviderAdmin(admin.ModelAdmin):
    form = UpstreamProviderForm
    list_display = ("name", "kind", "enabled", "create_accounts", "trust_mfa", "domain_list")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "slug")
    actions = ["test_connection"]
    readonly_fields = ("callback_url", "secret_stored")
    fieldsets = (
        (None, {"fields": ("name", "slug", "kind", "enabled", "show_on_sign_in")}),
        (
            gettext_lazy("Connection"),
            {
                "fields": (
                    "issuer",
                    "tenant",
                    "client_id",
                    "client_secret",
                    "secret_stored",
                    "scopes",
                    "callback_url",
                    "allow_private_network",
                )
            },
        ),
        (
            gettext_lazy("SAML 2.0"),
            {
                "fields": (
                    "saml_metadata_url",
                    "saml_metadata_file",
                    "saml_entity_id",
                    "saml_sso_url",
                    "saml_certificate",
                    "allow_unsolicited",
                )
            },
        ),
        (
            gettext_lazy("Who signs in here"),
            {
                "fields": (
                    "email_domains",
                    "create_accounts",
                    "trust_mfa",
                    "mfa_authn_contexts",
                    "asserts_verified_email",
                )
            },
        ),
        (
            gettext_lazy("Attributes and groups"),
            {
                "fields": (
                    "email_attribute",
                    "username_claim",
                    "first_name_claim",
                    "last_name_claim",
                    "groups_claim",
                    "group_mapping",
                )
            },
        ),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The slug is in the redirect URI registered at the provider and in every link.
            fields.append("slug")
        return fields

    @admin.display(description=gettext_lazy("email domains"))
    def domain_list(self, obj: UpstreamProvider) -> str:
        return ", ".join(obj.domains)

    @admin.display(
        description=gettext_lazy("redirect URI (SAML: ACS URL) to register at the provider")
    )
    def callback_url(self, obj: UpstreamProvider) -> str:
        if obj.pk is None:
            return _("Shown once the provider is saved.")
        return redirect_uri(obj)

    @admin.display(description=gettext_lazy("client secret"))
    def secret_stored(self, obj: UpstreamProvider) -> str:
        return _("stored (write-only)") if obj.client_secret_encrypted else _("none")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.save_provider(
            provider=obj,
            client_secret=form.cleaned_data.get("client_secret") or None,
            actor=request.user,
            request=request,
            changed=list(form.changed_data),
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_provider(provider=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for provider in queryset:
            services.delete_provider(provider=provider, actor=request.user, request=request)

    @admin.action(
        description=gettext_lazy(
            "Test the connection (read the discovery document or SAML metadata)"
        )
    )
    def test_connection(self, request: HttpRequest, queryset: QuerySet) -> None:
        for provider in queryset:
            report = check_connection(provider)
            if report.ok:
                self.message_user(
                    request,
                    format_html(
                        "{}: {} {}. {}",
                        provider.name,
                        _("issuer"),
                        report.issuer,
                        "; ".join(f"{name}: {url}" for name, url in report.endpoints.items()),
                    ),
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    format_html("{}: {}", provider.name, report.error),
                    messages.ERROR,
                )
