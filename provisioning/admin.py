"""Admin for outbound provisioning: an app's SCIM target (sync now, dry run), its delivery log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from provisioning import services
from provisioning.forms import ScimTargetForm
from provisioning.models import ProvisioningDelivery, ScimTarget
from provisioning.planning import plan_target


@admin.register(ScimTarget)
class ScimTargetAdmin(admin.ModelAdmin):
    form = ScimTargetForm
    list_display = ("client", "base_url", "enabled", "token_status", "last_sync_at", "links")
    list_select_related = ("client",)
    list_filter = ("enabled",)
    search_fields = ("client__name", "client__client_id", "base_url")
    readonly_fields = ("token_status", "last_sync_at", "links")
    actions = ("sync_now",)

    def get_fields(self, request: HttpRequest, obj: ScimTarget | None = None) -> Any:
        fields = list(ScimTargetForm.Meta.fields)
        if obj is not None:
            fields.remove("client")
            fields[1:1] = ["token_status"]
            fields += ["last_sync_at", "links"]
        return fields

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        kwargs["fields"] = [f for f in ScimTargetForm.Meta.fields if obj is None or f != "client"]
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ScimTarget, form: Any, change: bool) -> None:
        services.save_target(
            target=obj,
            token=form.cleaned_data.get("token") or None,
            actor=request.user,
            request=request,
        )

    @admin.display(description=gettext_lazy("bearer token"))
    def token_status(self, obj: ScimTarget) -> str:
        # Only whether one is stored: the token itself is never shown after saving.
        return _("set (hidden)") if obj.token_encrypted else _("not set")

    @admin.display(description=gettext_lazy("tools"))
    def links(self, obj: ScimTarget) -> str:
        if obj.pk is None:
            return ""
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:provisioning_scimtarget_dry_run", args=[obj.pk]),
            _("dry run"),
            reverse("admin:provisioning_provisioningdelivery_changelist")
            + f"?target__id__exact={obj.pk}",
            _("delivery log"),
        )

    def get_urls(self) -> list[URLPattern]:
        dry_run = path(
            "<int:object_id>/dry-run/",
            self.admin_site.admin_view(self.dry_run_view),
            name="provisioning_scimtarget_dry_run",
        )
        return [dry_run, *super().get_urls()]

    def dry_run_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """What a sync would send, without sending anything (POST: queue it: "sync now")."""
        target = get_object_or_404(ScimTarget.objects.select_related("client"), pk=object_id)
        if not self.has_view_permission(request, target):
            return HttpResponse(status=403)
        if request.method == "POST" and self.has_change_permission(request, target):
            queued = services.sync_target(target=target, reason="sync_now")
            self.message_user(
                request,
                ngettext("Queued %(count)d delivery.", "Queued %(count)d deliveries.", len(queued))
                % {"count": len(queued)},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(request.path)
        changes = plan_target(target=target)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": target,
            "title": _("Dry run: what a sync of %(app)s would send") % {"app": target.client},
            "changes": changes,
            "live": target.enabled and target.client.is_active,
            "can_sync": self.has_change_permission(request, target),
        }
        return TemplateResponse(request, "admin/provisioning/dry_run.html", context)

    @admin.action(description=gettext_lazy("Sync now (create, update and deactivate at the app)"))
    def sync_now(self, request: HttpRequest, queryset: QuerySet[ScimTarget]) -> None:
        total = 0
        for target in queryset.select_related("client"):
            total += len(services.sync_target(target=target, reason="sync_now"))
        self.message_user(
            request,
            ngettext("Queued %(count)d delivery.", "Queued %(count)d deliveries.", total)
            % {"count": total},
            messages.SUCCESS,
        )


@admin.register(ProvisioningDelivery)
class ProvisioningDeliveryAdmin(admin.ModelAdmin):
    """The per-app provisioning delivery log: read-only (the worker writes it)."""

    list_display = (
        "created_at",
        "target",
        "user_repr",
        "remote_id",
        "action",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "reason",
        "next_attempt_at",
    )
    list_filter = ("status", "action", "target")
    list_select_related = ("target__client",)
    search_fields = ("user_repr", "target__client__name", "target__client__client_id")
    date_hierarchy = "created_at"
    list_per_page = 100

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
