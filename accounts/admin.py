"""Django admin for user management and the read-only audit log.

Every security change an administrator makes goes through `accounts.services`, which applies
its side effects (sessions, tokens, reset emails) and writes the audit row with the acting admin.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import (
    admin_groups,  # noqa: F401 (registers the group admin)
    services,
)
from accounts import branding as branding_service
from accounts.forms import AdminUserChangeForm, AdminUserCreationForm
from accounts.models import AuditEvent, Branding, User
from accounts.permissions import may_administer, may_set_privileges


class LockedFilter(admin.SimpleListFilter):
    title = _("sign-in lock")
    parameter_name = "locked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Locked now")), ("no", _("Not locked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(locked_until__gt=now)
        if self.value() == "no":
            return queryset.exclude(locked_until__gt=now)
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = AdminUserChangeForm
    add_form = AdminUserCreationForm
    add_form_template = "admin/change_form.html"
    list_display = (
        "username",
        "email",
        "first_name",
        "last_name",
        "is_active",
        "is_staff",
        "is_superuser",
        "is_locked_now",
        "last_login",
    )
    list_filter = (
        "is_active",
        "is_staff",
        "is_superuser",
        "password_reset_required",
        LockedFilter,
        "groups",
    )
    search_fields = ("username", "first_name", "last_name", "email")
    # Plain multiple selects for groups and permissions: Django's two-pane picker script gives
    # its search icon an aria-label without a role (axe: aria-prohibited-attr, WCAG 4.1.2).
    filter_horizontal = ()
    readonly_fields = (
        "last_login",
        "date_joined",
        "updated_at",
        "failed_login_count",
        "last_failed_login_at",
        "locked_until",
        "two_step_methods",
    )
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Directory"), {"fields": ("employee_id", "department", "job_title")}),
        (
            _("Access"),
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "password_reset_required",
                    "groups",
                    "user_permissions",
                ),
            },
        ),
        (
            _("Sign-in protection"),
            {
                "fields": (
                    "two_step_methods",
                    "failed_login_count",
                    "last_failed_login_at",
                    "locked_until",
                )
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "email",
                    "first_name",
                    "last_name",
                    "password_choice",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    actions = [
        "deactivate_users",
        "activate_users",
        "force_password_reset",
        "unlock_users",
        "reset_factors",
        "sign_out_everywhere",
        "revoke_all_tokens",
        "grant_staff",
        "revoke_staff",
        "grant_superuser",
        "revoke_superuser",
    ]

    @admin.display(boolean=True, description=_("locked"))
    def is_locked_now(self, obj: User) -> bool:
        return obj.is_locked()

    @admin.display(description=_("two-step methods"))
    def two_step_methods(self, obj: User) -> str:
        # Names only: never a secret, a code or a credential.
        kinds = [str(a) for a in Authenticator.objects.filter(user_id=obj.pk).order_by("type")]
        return ", ".join(kinds) or str(_("none"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not may_set_privileges(actor=request.user):
            # Only a superuser hands out staff or superuser status or individual permissions
            # (accounts/permissions.py): nobody else raises anyone to their own level or above.
            fields += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return fields

    # Django's own password form (`user_change_password`) and the change and delete views ask
    # these with the user in question: a help-desk member sees a superuser's or another staff
    # member's account read-only, and gets 403 on its password form.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or may_administer(actor=request.user, subject=obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        return allowed and (obj is None or may_administer(actor=request.user, subject=obj))

    def has_superuser_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    # --- Saving through the services ------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            services.register_user(
                user=obj, password=form.chosen_password(), actor=request.user, request=request
            )
            if not form.chosen_password():
                self.message_user(
                    request,
                    _("A link to choose a password was emailed to %(email)s.")
                    % {"email": obj.email},
                )
            return
        services.save_admin_changes(
            user=obj, changed_fields=list(form.changed_data), actor=request.user, request=request
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Group membership changes through the group services (the group rule, one audit row
        # per group joined or left), not through the form's own many-to-many write.
        groups = form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        if groups is not None:
            services.set_user_groups(
                user=form.instance, groups=groups, actor=request.user, request=request
            )

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.delete_user(user=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in self._allowed(request, queryset):
            services.delete_user(user=user, actor=request.user, request=request)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            user = self.get_object(request, unquote(id))
            if user is not None:
                services.record_admin_password_set(user=user, actor=request.user, request=request)
        return response

    # --- Actions ----------------------------------------------------------------------------

    def _allowed(self, request: HttpRequest, users: Any) -> list[User]:
        """The selected users this administrator may act on (accounts/permissions.py); the
        others are named in an error message, left unchanged, and the refusal is audited."""
        users = list(users)
        refused = [u for u in users if not may_administer(actor=request.user, subject=u)]
        if refused:
            services.record_admin_refusal(
                users=refused,
                actor=request.user,
                request=request,
                action=request.POST.get("action", ""),
            )
            self.message_user(
                request,
                _("Only a superuser may act on: %(users)s. They were left unchanged.")
                % {"users": ", ".join(u.get_username() for u in refused)},
                level=messages.ERROR,
            )
        return [u for u in users if u not in refused]

    def _others(self, request: HttpRequest, queryset: QuerySet[User], verb: str) -> list[User]:
        """The selected users except the acting administrator (nobody locks themselves out)."""
        users = list(queryset)
        if any(user.pk == request.user.pk for user in users):
            self.message_user(
                request,
                _("You cannot %(verb)s your own account; it was left unchanged.") % {"verb": verb},
                level=messages.WARNING,
            )
        return self._allowed(request, [user for user in users if user.pk != request.user.pk])

    def _done(self, request: HttpRequest, count: int, message: str) -> None:
        self.message_user(request, message % {"count": count}, level=messages.SUCCESS)

    @admin.action(
        description=_("Deactivate selected users (ends their sessions and tokens)"),
        permissions=["change"],
    )
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._others(request, queryset, str(_("deactivate")))
        for user in users:
            services.deactivate_user(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext("%(count)d user deactivated.", "%(count)d users deactivated.", len(users)),
        )

    @admin.action(description=_("Activate selected users"), permissions=["change"])
    def activate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [u for u in self._allowed(request, queryset) if not u.is_active]
        for user in users:
            services.activate_user(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext("%(count)d user activated.", "%(count)d users activated.", len(users)),
        )

    @admin.action(
        description=_("Force a password reset (signs out, emails a reset link)"),
        permissions=["change"],
    )
    def force_password_reset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._others(request, queryset, str(_("force a reset on")))
        without_email = []
        for user in users:
            if not services.force_password_reset(user=user, actor=request.user, request=request):
                without_email.append(user.get_username())
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user must choose a new password.",
                "%(count)d users must choose a new password.",
                len(users),
            ),
        )
        if without_email:
            self.message_user(
                request,
                _("No reset link could be emailed to: %(users)s. Set their password yourself.")
                % {"users": ", ".join(without_email)},
                level=messages.WARNING,
            )

    @admin.action(description=_("Unlock selected users"), permissions=["change"])
    def unlock_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [u for u in self._allowed(request, queryset) if u.locked_until is not None]
        for user in users:
            services.unlock_user(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext("%(count)d user unlocked.", "%(count)d users unlocked.", len(users)),
        )

    @admin.action(
        description=_("Reset two-step verification (removes every factor)"),
        permissions=["change"],
    )
    def reset_factors(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._others(request, queryset, str(_("reset the two-step verification of")))
        for user in users:
            services.reset_user_factors(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user signs in without a second factor until they set one up again.",
                "%(count)d users sign in without a second factor until they set one up again.",
                len(users),
            ),
        )

    @admin.action(
        description=_("Sign out of every session (and the apps those sessions signed in to)"),
        permissions=["change"],
    )
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._others(request, queryset, str(_("sign out")))
        for user in users:
            services.sign_out_everywhere(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user signed out everywhere.",
                "%(count)d users signed out everywhere.",
                len(users),
            ),
        )

    @admin.action(
        description=_("Revoke all app tokens (signs them out of every app)"),
        permissions=["change"],
    )
    def revoke_all_tokens(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = self._allowed(request, queryset)
        for user in users:
            services.revoke_all_user_tokens(user=user, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user's app tokens revoked.",
                "%(count)d users' app tokens revoked.",
                len(users),
            ),
        )

    @admin.action(description=_("Grant staff status"), permissions=["superuser"])
    def grant_staff(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [u for u in self._allowed(request, queryset) if not u.is_staff]
        for user in users:
            services.set_staff(user=user, is_staff=True, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext("%(count)d user is now staff.", "%(count)d users are now staff.", len(users)),
        )

    @admin.action(description=_("Revoke staff status"), permissions=["superuser"])
    def revoke_staff(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [
            u for u in self._others(request, queryset, str(_("revoke staff from"))) if u.is_staff
        ]
        for user in users:
            services.set_staff(user=user, is_staff=False, actor=request.user, request=request)
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user is no longer staff.",
                "%(count)d users are no longer staff.",
                len(users),
            ),
        )

    @admin.action(description=_("Grant superuser status"), permissions=["superuser"])
    def grant_superuser(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [u for u in self._allowed(request, queryset) if not u.is_superuser]
        for user in users:
            services.set_superuser(
                user=user, is_superuser=True, actor=request.user, request=request
            )
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user is now a superuser.",
                "%(count)d users are now superusers.",
                len(users),
            ),
        )

    @admin.action(description=_("Revoke superuser status"), permissions=["superuser"])
    def revoke_superuser(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users = [
            u
            for u in self._others(request, queryset, str(_("revoke superuser from")))
            if u.is_superuser
        ]
        for user in users:
            services.set_superuser(
                user=user, is_superuser=False, actor=request.user, request=request
            )
        self._done(
            request,
            len(users),
            ngettext(
                "%(count)d user is no longer a superuser.",
                "%(count)d users are no longer superusers.",
                len(users),
            ),
        )


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: nobody adds, edits or deletes rows from the admin."""

    list_display = ("created_at", "type", "actor_repr", "subject_repr", "client_repr", "ip")
    list_filter = ("type", "created_at")
    search_fields = ("actor_repr", "subject_repr", "client_repr", "ip", "user_agent")
    date_hierarchy = "created_at"
    list_per_page = 100
    fields = (
        "created_at",
        "type",
        "actor",
        "actor_repr",
        "subject",
        "subject_repr",
        "client",
        "client_repr",
        "ip",
        "user_agent",
        "extra",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Branding)
class BrandingAdmin(admin.ModelAdmin):
    """The one branding row: the list goes straight to it (or to "add" before it exists).

    Saving goes through `accounts.branding.update_branding` (validated, audited, cache dropped).
    """

    fields = ("company_name", "logo_url", "primary_color", "support_url", "updated_at")
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not Branding.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Emptying a field returns it to the server setting; there is nothing to delete.
        return False

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if Branding.objects.exists():
            target = reverse("admin:accounts_branding_change", args=[Branding.SINGLETON_ID])
        else:
            target = reverse("admin:accounts_branding_add")
        return HttpResponseRedirect(target)

    def save_model(self, request: HttpRequest, obj: Branding, form: Any, change: bool) -> None:
        branding_service.update_branding(
            actor=request.user,
            request=request,
            **{
                field: form.cleaned_data.get(field) or ""
                for field in branding_service.EDITABLE_FIELDS
            },
        )
        obj.refresh_from_db()


# allauth registers its own admins for these; they show the stored authenticator data (the TOTP
# key, the recovery-code seed) and let rows be edited or deleted without an audit row or the
# session actually ending. Ours are read-only listings; changes go through the user actions.
# (Importing allauth's admin modules first makes their registration happen before ours.)
import_module("allauth.mfa.admin")
import_module("allauth.usersessions.admin")
for _model in (Authenticator, UserSession):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Authenticator)
class AuthenticatorAdmin(_ReadOnlyAdmin):
    """Who has which second factor (never its secret); reset with the user action."""

    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    search_fields = ("user__username", "user__email")
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields


@admin.register(UserSession)
class UserSessionAdmin(_ReadOnlyAdmin):
    """Where users are signed in; end sessions with the user action "Sign out of every session"."""

    list_display = ("user", "ip", "user_agent", "created_at", "last_seen_at")
    search_fields = ("user__username", "ip")
    fields = ("user", "ip", "user_agent", "created_at", "last_seen_at")
    readonly_fields = fields
