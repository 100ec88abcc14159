"""The directory in the admin: each user's source (local or the directory), the record of
every sync with its counts and errors, "Test connection" and "Sync now"."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.admin import UserAdmin
from accounts.models import User
from directory.config import is_configured
from directory.models import DirectoryAccount, DirectorySync
from directory.services import check_connection
from directory.tasks import enqueue_sync


class SourceFilter(admin.SimpleListFilter):
    title = gettext_lazy("source")
    parameter_name = "source"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("local", _("Local")), ("directory", _("Company directory"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "local":
            return queryset.filter(directory_account__isnull=True)
        if self.value() == "directory":
            return queryset.filter(directory_account__isnull=False)
        return queryset


admin.site.unregister(User)


@admin.register(User)
class DirectoryUserAdmin(UserAdmin):
    """accounts' user admin with the source of each user."""

    list_display = (*UserAdmin.list_display, "source")  # type: ignore[assignment]
    list_filter = (*UserAdmin.list_filter, SourceFilter)  # type: ignore[assignment]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "directory_entry")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        # Read-only, so the change form posts nothing more than accounts' own form.
        return [*fieldsets, (_("Source"), {"fields": ("directory_entry",)})]

    @admin.display(description=gettext_lazy("company directory entry"))
    def directory_entry(self, user: User) -> str:
        account = DirectoryAccount.objects.filter(user=user).first()
        if account is None:
            return _("None: a local account (its password is kept here).")
        seen = (
            date_format(localtime(account.last_seen_at), "DATETIME_FORMAT")
            if account.last_seen_at
            else _("never")
        )
        return _("%(dn)s at %(source)s, last seen %(seen)s") % {
            "dn": account.dn,
            "source": account.source,
            "seen": seen,
        } + (_(" (deactivated by the directory)") if account.deactivated_by_directory else "")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("directory_account")

    @admin.display(description=gettext_lazy("source"))
    def source(self, user: User) -> str:
        account = getattr(user, "directory_account", None)
        return _("Company directory") if account is not None else _("Local")


@admin.register(DirectorySync)
class DirectorySyncAdmin(admin.ModelAdmin):
    change_list_template = "admin/directory/directorysync/change_list.html"
    list_display = (
        "started_at",
        "status",
        "trigger",
        "users_seen",
        "users_created",
        "users_updated",
        "users_deactivated",
        "users_activated",
        "groups_created",
        "error_count",
    )
    list_filter = ("status",)
    fields = readonly_fields = (
        "started_at",
        "finished_at",
        "status",
        "trigger",
        "users_seen",
        "users_created",
        "users_updated",
        "users_deactivated",
        "users_activated",
        "groups_created",
        "groups_updated",
        "memberships_added",
        "memberships_removed",
        "errors",
    )

    @admin.display(description=gettext_lazy("errors"))
    def error_count(self, run: DirectorySync) -> int:
        return len(run.errors)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        return [
            path(
                "test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="directory_directorysync_test_connection",
            ),
            path(
                "sync-now/",
                self.admin_site.admin_view(self.sync_now_view),
                name="directory_directorysync_sync_now",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        context = {"directory_configured": is_configured(), **(extra_context or {})}
        return super().changelist_view(request, extra_context=context)

    def _back(self) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:directory_directorysync_changelist"))

    def _may_act(self, request: HttpRequest) -> bool:
        # Both buttons act on every directory user: superusers only, by POST.
        return request.method == "POST" and bool(request.user.is_superuser)

    def test_connection_view(self, request: HttpRequest) -> HttpResponse:
        if not self._may_act(request):
            messages.error(request, _("Only a superuser may test the directory connection."))
            return self._back()
        ok, message = check_connection()
        messages.add_message(request, messages.SUCCESS if ok else messages.ERROR, message)
        return self._back()

    def sync_now_view(self, request: HttpRequest) -> HttpResponse:
        if not self._may_act(request):
            messages.error(request, _("Only a superuser may start a directory sync."))
            return self._back()
        if not is_configured():
            messages.error(request, _("No directory is configured (IDP_LDAP_URL is empty)."))
            return self._back()
        enqueue_sync(trigger="admin")
        messages.success(request, _("Directory sync queued; it appears here when it has run."))
        return self._back()
