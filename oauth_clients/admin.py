"""Admin for registered client apps: list, change form, register flow, actions with confirmation.

Reachable by superusers and by staff holding the `oauth_clients` client permissions (Django's
model permissions: view / add / change / delete). Every state change goes through
`oauth_clients.services`, so each writes an audit row naming the acting administrator.
"""

from __future__ import annotations

from typing import Any

# DOT registers its own ApplicationAdmin for the swapped model when its admin module loads;
# load it now (our app comes first in INSTALLED_APPS) so ours can replace it.
import oauth2_provider.admin  # noqa: F401 (imported for its registration side effect)
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from oauth_clients import admin_views, selectors, services
from oauth_clients.forms import ClientChangeForm
from oauth_clients.models import BackchannelDelivery, Client

if admin.site.is_registered(Client):
    admin.site.unregister(Client)

# Rows of the delivery log shown on a client's page.
BACKCHANNEL_LOG_ROWS = 20


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    form = ClientChangeForm
    list_display = (
        "name",
        "client_id",
        "kind",
        "is_active",
        "is_trusted",
        "requires_mfa",
        "last_used_at",
        "created",
    )
    list_display_links = ("name", "client_id")
    list_filter = ("is_active", "kind", "is_trusted", "requires_mfa", "client_type", "algorithm")
    search_fields = ("name", "client_id", "owner_contact", "description", "redirect_uris")
    ordering = ("name",)
    list_per_page = 50
    # DOT's get_absolute_url points at its self-service pages, which are not mounted here.
    view_on_site = False
    readonly_fields = (
        "client_id",
        "kind",
        "client_type",
        "grant_types_display",
        "secret_status",
        "is_active",
        "last_used_at",
        "created",
        "updated",
        "overview",
        "backchannel_log",
        "access_summary",
        "saml_summary",
    )
    fieldsets = (
        (
            gettext_lazy("Usage"),
            {
                "fields": ("overview",),
                "description": gettext_lazy(
                    "How much the app is in use now. Use the buttons above to rotate its secret, "
                    "disable it or revoke everything it holds."
                ),
            },
        ),
        (
            gettext_lazy("The app"),
            {
                "fields": (
                    "name",
                    "description",
                    "client_id",
                    "kind",
                    "client_type",
                    "grant_types_display",
                    "secret_status",
                    "is_active",
                )
            },
        ),
        (
            gettext_lazy("Sign-in"),
            {
                "fields": (
                    "redirect_uris",
                    "post_logout_redirect_uris",
                    "allowed_scopes",
                    "algorithm",
                )
            },
        ),
        (
            gettext_lazy("Who may use the app"),
            {
                "fields": ("access_summary",),
                "description": gettext_lazy(
                    "Access policy, assignments, roles and claim mapping are changed on their "
                    "own page; each change is audited."
                ),
            },
        ),
        (
            gettext_lazy("Trust and security"),
            {
                "fields": (
                    "is_trusted",
                    "requires_mfa",
                    "require_pkce",
                    "require_dpop",
                    "require_pushed_authorization_requests",
                    "high_security",
                    "is_resource_server",
                ),
                "description": gettext_lazy(
                    "Turning PKCE off or marking an app trusted weakens it; the change is audited. "
                    "High security (FAPI 2.0) needs the app's public keys (API and keys below)."
                ),
            },
        ),
        (
            gettext_lazy("API and keys"),
            {
                # RFC 9068: an API's audience; RFC 7523 §2.2: the keys a client signs in with.
                "fields": ("audience", "jwks", "jwks_uri"),
                "classes": ("collapse",),
            },
        ),
        (
            gettext_lazy("Shown to users"),
            {
                "fields": (
                    "logo_uri",
                    "client_uri",
                    "initiate_login_uri",
                    "policy_uri",
                    "tos_uri",
                    "owner_contact",
                )
            },
        ),
        (
            gettext_lazy("Token lifetimes"),
            {"fields": services.LIFETIME_FIELDS, "classes": ("collapse",)},
        ),
        (
            gettext_lazy("Logout notifications"),
            {
                "fields": (
                    "backchannel_logout_uri",
                    "backchannel_logout_session_required",
                    "frontchannel_logout_uri",
                    "allow_private_network",
                    "backchannel_log",
                ),
                "classes": ("collapse",),
            },
        ),
        (gettext_lazy("Record"), {"fields": ("last_used_at", "created", "updated")}),
    )
    actions = (
        "disable_selected",
        "enable_selected",
        "revoke_selected",
        "delete_selected_clients",
    )

    # --- Screens

    def get_urls(self) -> list[URLPattern]:
        def wrap(view: Any) -> Any:
            def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
                return view(self, request, *args, **kwargs)

            return self.admin_site.admin_view(wrapper)

        ours = [
            path(
                "register/", wrap(admin_views.register_view), name="oauth_clients_client_register"
            ),
            path(
                "<path:object_id>/setup/",
                wrap(admin_views.setup_view),
                name="oauth_clients_client_setup",
            ),
            path(
                "<path:object_id>/rotate-secret/",
                wrap(admin_views.rotate_secret_view),
                name="oauth_clients_client_rotate_secret",
            ),
            path(
                "<path:object_id>/disable/",
                wrap(admin_views.disable_view),
                name="oauth_clients_client_disable",
            ),
            path(
                "<path:object_id>/enable/",
                wrap(admin_views.enable_view),
                name="oauth_clients_client_enable",
            ),
            path(
                "<path:object_id>/revoke-tokens/",
                wrap(admin_views.revoke_view),
                name="oauth_clients_client_revoke_tokens",
            ),
            path(
                "<path:object_id>/access/",
                wrap(admin_views.access_view),
                name="oauth_clients_client_access",
            ),
            path(
                "<path:object_id>/saml/",
                wrap(admin_views.saml_view),
                name="oauth_clients_client_saml",
            ),
            path(
                "<path:object_id>/claims-preview/",
                wrap(admin_views.claims_preview_view),
                name="oauth_clients_client_claims_preview",
            ),
            # Replaces Django's delete page (same URL and name): ours goes through the service
            # and shows what stops working instead of listing token rows.
            path(
                "<path:object_id>/delete/",
                wrap(admin_views.delete_view),
                name="oauth_clients_client_delete",
            ),
        ]
        return ours + super().get_urls()

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        # Registration asks its own questions (admin_views.register_view).
        return HttpResponseRedirect(reverse("admin:oauth_clients_client_register"))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # New apps are registered through the register flow, not "save and add another".
        extra_context = {**(extra_context or {}), "show_save_and_add_another": False}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_fieldsets(self, request: HttpRequest, obj: Client | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None and obj.kind == Client.Kind.SAML:
            return self._saml_fieldsets(fieldsets)
        if obj is None or services.chooses_algorithm(obj.kind):
            return fieldsets
        # A service signs no tokens: no signing algorithm to choose (ClientChangeForm drops it).
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "algorithm"]})
            for name, options in fieldsets
        ]

    # A SAML app: its service provider instead of the OAuth settings (none of which apply).
    SAML_HIDDEN_FIELDS = frozenset(
        {
            "client_type",
            "grant_types_display",
            "secret_status",
            "redirect_uris",
            "post_logout_redirect_uris",
            "algorithm",
            "require_pkce",
            "require_dpop",
            "require_pushed_authorization_requests",
            "high_security",
            "is_resource_server",
            "backchannel_logout_uri",
            "backchannel_logout_session_required",
            "frontchannel_logout_uri",
            "backchannel_log",
            *services.LIFETIME_FIELDS,
        }
    )

    def _saml_fieldsets(self, fieldsets: Any) -> list[tuple[Any, dict[str, Any]]]:
        kept: list[tuple[Any, dict[str, Any]]] = []
        for name, options in fieldsets:
            fields = [f for f in options["fields"] if f not in self.SAML_HIDDEN_FIELDS]
            if "allowed_scopes" in fields:
                kept.append(
                    (
                        gettext_lazy("SAML 2.0"),
                        {
                            "fields": ["saml_summary", "allowed_scopes"],
                            "description": gettext_lazy(
                                "What the app's metadata declared and how it is answered; the "
                                "scopes say which claims it receives as attributes."
                            ),
                        },
                    )
                )
                continue
            if fields:
                kept.append((name, {**options, "fields": fields}))
        # The logout fieldset keeps only its private-network switch: for a SAML app it lets
        # the IdP fetch metadata from an internal address.
        return kept

    def save_model(self, request: HttpRequest, obj: Client, form: Any, change: bool) -> None:
        # Only reached for changes: adding goes through the register flow.
        services.update_client(
            client=obj, actor=request.user, changes=form.changes(), request=request
        )

    def delete_model(self, request: HttpRequest, obj: Client) -> None:
        services.delete_client(client=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Client]) -> None:
        for client in queryset:
            services.delete_client(client=client, actor=request.user, request=request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # Django's bulk delete skips our service (and its audit row); ours replaces it.
        actions.pop("delete_selected", None)
        return actions

    # --- Read-only fields

    @admin.display(description=gettext_lazy("grant types"))
    def grant_types_display(self, obj: Client) -> str:
        return ", ".join(sorted(obj.allowed_grant_types())) if obj.pk else ""

    @admin.display(description=gettext_lazy("client secret"))
    def secret_status(self, obj: Client) -> str:
        # Never the secret or its hash: only whether there is one and where to get a new one.
        if obj.client_type != Client.CLIENT_CONFIDENTIAL:
            return _("None (public client: it proves itself with PKCE).")
        text = _("Set (stored hashed; shown only once). Rotate it to get a new one.")
        if obj.previous_secret_expires_at:
            text += " " + _("The previous secret still works until %(when)s.") % {
                "when": obj.previous_secret_expires_at.strftime("%Y-%m-%d %H:%M UTC")
            }
        return text

    @admin.display(description=gettext_lazy("SAML service provider"))
    def saml_summary(self, obj: Client) -> str:
        sp = selectors.saml_sp(obj)
        if sp is None:
            return ""
        acs_rows = format_html_join(
            "",
            "<li>{} <code>{}</code>{}</li>",
            (
                (
                    acs["url"],
                    acs["binding"].rsplit(":", 1)[-1],
                    format_html(" ({})", _("default")) if acs.get("is_default") else "",
                )
                for acs in sorted(sp.acs_urls, key=lambda acs: acs["index"])
            ),
        )
        attributes = ", ".join(
            f"{claim} → {name}" for claim, name in sorted(sp.attribute_names.items())
        )
        source: str
        if sp.metadata_url:
            source = format_html(
                "{} ({})",
                sp.metadata_url,
                sp.metadata_fetched_at.strftime("%Y-%m-%d %H:%M UTC")
                if sp.metadata_fetched_at
                else _("never fetched"),
            )
        else:
            source = _("uploaded file") if sp.metadata_xml else _("entered by hand")
        return format_html(
            '<dl class="client-overview">'
            "<dt>{}</dt><dd><code>{}</code></dd>"
            "<dt>{}</dt><dd><ul>{}</ul></dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "</dl>"
            '<p><a class="button" href="{}">{}</a></p>',
            _("Entity ID"),
            sp.entity_id,
            _("ACS URLs"),
            acs_rows,
            _("NameID format"),
            sp.get_nameid_format_display(),
            _("Sign the response"),
            _("yes") if sp.sign_response else _("no (the assertion is signed)"),
            _("Requests must be signed"),
            _("yes") if sp.want_authn_requests_signed else _("no"),
            _("Attribute names"),
            attributes or _("the claim names themselves"),
            _("Signing certificates"),
            len(sp.certificate_list()),
            _("Metadata"),
            source,
            reverse("admin:oauth_clients_client_saml", args=[obj.pk]),
            _("SAML settings and refresh metadata"),
        )

    @admin.display(description=gettext_lazy("recent back-channel logouts"))
    def backchannel_log(self, obj: Client) -> str:
        """The delivery log of logout tokens sent to this app (newest first)."""
        if not obj.pk:
            return ""
        deliveries = list(obj.backchannel_deliveries.all()[:BACKCHANNEL_LOG_ROWS])
        if not deliveries:
            return _("None sent yet.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    delivery.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    delivery.get_channel_display(),
                    delivery.get_status_display(),
                    delivery.attempts,
                    delivery.last_status_code or "–",
                    delivery.last_error or "–",
                    delivery.reason,
                )
                for delivery in deliveries
            ),
        )
        log_url = reverse("admin:oauth_clients_backchanneldelivery_changelist")
        return format_html(
            '<table class="backchannel-log"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>"
            '<p><a href="{}?client__id__exact={}">{}</a></p>',
            _("queued"),
            _("channel"),
            _("status"),
            _("attempts"),
            _("last HTTP status"),
            _("last error"),
            _("why"),
            rows,
            log_url,
            obj.pk,
            _("The whole delivery log of this app"),
        )

    @admin.display(description=gettext_lazy("access"))
    def access_summary(self, obj: Client) -> str:
        if not obj.pk:
            return ""
        if obj.access_policy == Client.AccessPolicy.OPEN:
            policy = _("Open to every active account.")
        else:
            policy = ngettext(
                "Only assigned groups and users (%(count)d assignment).",
                "Only assigned groups and users (%(count)d assignments).",
                obj.assignments.count(),
            ) % {"count": obj.assignments.count()}
        roles = ", ".join(obj.roles.order_by("name").values_list("name", flat=True))
        return format_html(
            '<dl class="client-overview"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd>'
            "<dt>{}</dt><dd>{}</dd></dl>"
            '<p><a class="button" href="{}">{}</a> <a class="button" href="{}">{}</a></p>',
            _("Policy"),
            policy,
            _("Roles"),
            roles or _("none"),
            _("Roles claim"),
            obj.roles_claim,
            reverse("admin:oauth_clients_client_access", args=[obj.pk]),
            _("Access, roles and claims"),
            reverse("admin:oauth_clients_client_claims_preview", args=[obj.pk]),
            _("Preview a user's claims"),
        )

    @admin.display(description=gettext_lazy("overview"))
    def overview(self, obj: Client) -> str:
        if not obj.pk:
            return ""
        figures = selectors.client_overview(client=obj)
        last_used = (
            figures.last_used_at.strftime("%Y-%m-%d %H:%M UTC")
            if figures.last_used_at
            else _("never")
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    event.created_at.strftime("%Y-%m-%d %H:%M"),
                    event.get_type_display(),
                    event.actor_repr or _("system"),
                    event.subject_repr,
                )
                for event in figures.recent_events
            ),
        )
        return format_html(
            '<dl class="client-overview">'
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "<dt>{}</dt><dd>{}</dd>"
            "</dl>"
            "<h3>{}</h3>"
            '<table class="client-recent-events"><thead><tr>'
            "<th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("Status"),
            _("active") if obj.is_active else _("DISABLED"),
            _("Last used"),
            last_used,
            _("Active grants"),
            _("%(access)d access tokens, %(refresh)d refresh tokens, %(consents)d consents")
            % {
                "access": figures.active_access_tokens,
                "refresh": figures.active_refresh_tokens,
                "consents": figures.consents,
            },
            _("Distinct users"),
            figures.distinct_users,
            _("Pending authorization codes"),
            figures.pending_codes,
            _("Recent audit events"),
            _("When"),
            _("Event"),
            _("By"),
            _("User"),
            rows or format_html('<tr><td colspan="4">{}</td></tr>', _("none yet")),
        )

    # --- Bulk actions, each with a confirmation page first

    def _bulk(
        self,
        request: HttpRequest,
        queryset: QuerySet[Client],
        *,
        action: str,
        title: str,
        consequence: str,
        service: Any,
        done: str,
    ) -> HttpResponse | None:
        if request.POST.get("confirm") == "yes":
            count = 0
            for client in queryset:
                service(client=client, actor=request.user, request=request)
                count += 1
            self.message_user(request, done % {"count": count}, messages.SUCCESS)
            return None
        rows = [(client, selectors.client_overview(client=client)) for client in queryset]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "consequence": consequence,
            "rows": rows,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "queryset": queryset,
        }
        return TemplateResponse(request, "admin/oauth_clients/client/bulk_confirm.html", context)

    @admin.action(description=gettext_lazy("Disable selected apps"), permissions=["change"])
    def disable_selected(
        self, request: HttpRequest, queryset: QuerySet[Client]
    ) -> HttpResponse | None:
        return self._bulk(
            request,
            queryset,
            action="disable_selected",
            title=_("Disable these apps?"),
            consequence=_(
                "Nobody can sign in to them and every token they hold stops working at once."
            ),
            service=services.disable_client,
            done=ngettext("Disabled %(count)d app.", "Disabled %(count)d apps.", queryset.count()),
        )

    @admin.action(description=gettext_lazy("Enable selected apps"), permissions=["change"])
    def enable_selected(
        self, request: HttpRequest, queryset: QuerySet[Client]
    ) -> HttpResponse | None:
        return self._bulk(
            request,
            queryset,
            action="enable_selected",
            title=_("Enable these apps?"),
            consequence=_("Users can sign in to them again and they can get new tokens."),
            service=services.enable_client,
            done=ngettext("Enabled %(count)d app.", "Enabled %(count)d apps.", queryset.count()),
        )

    @admin.action(
        description=gettext_lazy("Revoke all tokens and consents of selected apps"),
        permissions=["change"],
    )
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[Client]
    ) -> HttpResponse | None:
        return self._bulk(
            request,
            queryset,
            action="revoke_selected",
            title=_("Revoke all tokens and consents of these apps?"),
            consequence=_(
                "Every user is signed out of them and asked for consent again; "
                "the apps stay enabled."
            ),
            service=services.revoke_all_client_tokens,
            done=ngettext(
                "Revoked the tokens of %(count)d app.",
                "Revoked the tokens of %(count)d apps.",
                queryset.count(),
            ),
        )

    @admin.action(description=gettext_lazy("Delete selected apps"), permissions=["delete"])
    def delete_selected_clients(
        self, request: HttpRequest, queryset: QuerySet[Client]
    ) -> HttpResponse | None:
        return self._bulk(
            request,
            queryset,
            action="delete_selected_clients",
            title=_("Delete these apps for good?"),
            consequence=_(
                "Their registrations, tokens and consents are deleted; audit events are kept. "
                "Disable them instead to stop them only for a while."
            ),
            service=services.delete_client,
            done=ngettext("Deleted %(count)d app.", "Deleted %(count)d apps.", queryset.count()),
        )


@admin.register(BackchannelDelivery)
class BackchannelDeliveryAdmin(admin.ModelAdmin):
    """The back-channel logout delivery log: read-only (the worker writes it)."""

    list_display = (
        "created_at",
        "client",
        "channel",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "reason",
        "next_attempt_at",
    )
    list_filter = ("channel", "status", "reason", "client")
    list_select_related = ("client",)
    search_fields = ("client__client_id", "client__name", "sub", "sid", "jti")
    date_hierarchy = "created_at"
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
