"""The group admin (in place of Django's): name, description, parent group, members, subgroups.

Every change is saved through the group services in `accounts.services` (the group rule of
accounts/permissions.py, one audit row per change); the form checks the same rules first so
that a refused change is a form error, never an error page. Members are added and removed by
username: a group of 10,000 people is no select box.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.groups import Membership, ancestor_ids, parent_map
from accounts.models import GroupProfile, User
from accounts.permissions import may_administer, may_set_privileges

# How many members the change page lists by name; the rest are one link away.
MEMBERS_SHOWN = 100
USERNAMES_HELP = _("Usernames, separated by spaces, commas or new lines.")


def _usernames(text: str) -> list[str]:
    return list(dict.fromkeys(name for name in re.split(r"[\s,;]+", text) if name))


class GroupAdminForm(forms.ModelForm):
    """Django's group form plus the nesting, the description and membership changes.

    `actor` (the signed-in administrator) is set on the class `GroupAdmin.get_form` returns.
    """

    actor: Any = None

    description = forms.CharField(
        label=_("description"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    parent = forms.ModelChoiceField(
        label=_("parent group"),
        queryset=Group.objects.order_by("name"),
        required=False,
        help_text=_("Members of this group are also members of the parent group."),
    )
    add_members = forms.CharField(
        label=_("add people"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=USERNAMES_HELP,
    )
    remove_members = forms.CharField(
        label=_("remove people"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=USERNAMES_HELP,
    )

    class Meta:
        model = Group
        fields = ("name", "permissions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        profile = GroupProfile.objects.filter(group_id=self.instance.pk).first()
        if profile is not None:
            self.initial.setdefault("description", profile.description)
            self.initial.setdefault("parent", profile.parent_id)

    def clean_name(self) -> str:
        return services.clean_group_name(name=self.cleaned_data["name"], group=self.instance)

    def clean_parent(self) -> Group | None:
        parent = self.cleaned_data.get("parent")
        services.check_group_parent(group=self.instance, parent=parent)
        return parent

    def _users(self, field: str) -> list[User]:
        names = _usernames(self.cleaned_data.get(field) or "")
        found = {user.username: user for user in User.objects.filter(username__in=names)}
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ValidationError(
                gettext("No user named: %(users)s.") % {"users": ", ".join(unknown)},
                code="unknown_user",
            )
        refused = [
            name for name in names if not may_administer(actor=self.actor, subject=found[name])
        ]
        if refused:
            raise ValidationError(
                gettext("Only a superuser may add or remove: %(users)s.")
                % {"users": ", ".join(refused)},
                code="refused",
            )
        return [found[name] for name in names]

    def clean_add_members(self) -> list[User]:
        return self._users("add_members")

    def clean_remove_members(self) -> list[User]:
        return self._users("remove_members")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        adding, removing = cleaned.get("add_members") or [], cleaned.get("remove_members") or []
        both = sorted({user.username for user in adding} & {user.username for user in removing})
        if both:
            self.add_error(
                "remove_members",
                gettext("Both added and removed: %(users)s.") % {"users": ", ".join(both)},
            )
        carries_permissions = bool(cleaned.get("permissions")) or (
            self.instance.pk is not None and self.instance.permissions.exists()
        )
        if (
            (adding or removing)
            and carries_permissions
            and not may_set_privileges(actor=self.actor)
        ):
            self.add_error(
                None,
                gettext(
                    "Only a superuser may change the members of a group that carries "
                    "administration permissions."
                ),
            )
        return cleaned


class SubgroupFilter(admin.SimpleListFilter):
    title = _("nesting")
    parameter_name = "nesting"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("top", _("Top-level groups")), ("nested", _("Subgroups"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> QuerySet[Group]:
        if self.value() == "top":
            return queryset.filter(profile__parent__isnull=True)
        if self.value() == "nested":
            return queryset.filter(profile__parent__isnull=False)
        return queryset


class GroupAdmin(admin.ModelAdmin):
    form = GroupAdminForm
    list_display = ("name", "parent_group", "member_count", "subgroup_count")
    list_filter = (SubgroupFilter,)
    search_fields = ("name",)
    ordering = ("name",)
    # A plain multiple select for permissions (as in the user admin: Django's two-pane picker
    # gives its search icon an aria-label without a role; axe: aria-prohibited-attr).
    filter_horizontal = ()
    readonly_fields = ("members", "subgroups", "apps")
    fieldsets = (
        (None, {"fields": ("name", "description", "parent")}),
        (_("Members"), {"fields": ("members", "add_members", "remove_members")}),
        (_("Subgroups"), {"fields": ("subgroups",)}),
        (_("Apps"), {"fields": ("apps",)}),
        (_("Administration permissions"), {"fields": ("permissions",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        # Counted in subqueries: joining members and subgroups at once would multiply rows.
        def count(queryset: QuerySet[Any], column: str) -> Coalesce:
            counted = (
                queryset.filter(**{column: OuterRef("pk")})
                .order_by()
                .values(column)
                .annotate(n=Count("*"))
                .values("n")
            )
            return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

        return (
            super()
            .get_queryset(request)
            .select_related("profile__parent")
            .annotate(
                _member_count=count(Membership.objects.all(), "group_id"),
                _subgroup_count=count(GroupProfile.objects.all(), "parent_id"),
            )
        )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if not may_set_privileges(actor=request.user):
            # Membership of a group hands out its permissions: only a superuser sets them
            # (accounts/permissions.py), as only a superuser sets a user's own.
            fields.append("permissions")
        return fields

    # --- What the list and the change page show ---------------------------------------------

    @admin.display(description=_("parent group"), ordering="profile__parent__name")
    def parent_group(self, obj: Group) -> str:
        profile = getattr(obj, "profile", None)
        return profile.parent.name if profile is not None and profile.parent else ""

    @admin.display(description=_("members"), ordering="_member_count")
    def member_count(self, obj: Group) -> int:
        return int(getattr(obj, "_member_count", 0))

    @admin.display(description=_("subgroups"), ordering="_subgroup_count")
    def subgroup_count(self, obj: Group) -> int:
        return int(getattr(obj, "_subgroup_count", 0))

    @admin.display(description=_("members"))
    def members(self, obj: Group) -> str:
        if obj.pk is None:
            return ""
        count = User.objects.filter(groups=obj).count()
        if not count:
            return gettext("No members yet.")
        shown = User.objects.filter(groups=obj).order_by("username")[:MEMBERS_SHOWN]
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>{}',
            (
                (
                    reverse("admin:accounts_user_change", args=[user.pk]),
                    user.get_username(),
                    "" if user.is_active else f" ({gettext('deactivated')})",
                )
                for user in shown
            ),
        )
        everyone = reverse("admin:accounts_user_changelist") + f"?groups__id__exact={obj.pk}"
        return format_html(
            '<p>{} <a href="{}">{}</a></p><p>{}</p>',
            ngettext("%(count)d member.", "%(count)d members.", count) % {"count": count},
            everyone,
            gettext("List them all"),
            links,
        )

    @admin.display(description=_("subgroups"))
    def subgroups(self, obj: Group) -> str:
        children = Group.objects.filter(profile__parent=obj).order_by("name") if obj.pk else []
        if not children:
            return gettext("None: add one by choosing this group as its parent.")
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:auth_group_change", args=[child.pk]), child.name)
                for child in children
            ),
        )

    @admin.display(description=_("apps"))
    def apps(self, obj: Group) -> str:
        """The apps this group is assigned to and the app roles it holds, and the apps its
        members reach through the groups above it. Read through the registry's relations to
        Group (Assignment.group, RoleGrant.group), so accounts imports nothing of the registry."""
        if obj.pk is None:
            return ""
        ancestors = ancestor_ids(obj.pk, parents=parent_map())
        rows = []
        for group_id, how in ((obj.pk, gettext("assigned")), *[(a, None) for a in ancestors]):
            group = obj if group_id == obj.pk else Group.objects.get(pk=group_id)
            for assignment in group.client_assignments.select_related("client").order_by(
                "client__name"
            ):
                client = assignment.client
                label = how or gettext("through %(group)s") % {"group": group.name}
                rows.append(
                    (
                        reverse("admin:oauth_clients_client_change", args=[client.pk]),
                        client.name or client.client_id,
                        label,
                    )
                )
        for grant in obj.app_role_grants.select_related("role__client").order_by(
            "role__client__name", "role__name"
        ):
            client = grant.role.client
            rows.append(
                (
                    reverse("admin:oauth_clients_client_change", args=[client.pk]),
                    client.name or client.client_id,
                    gettext("role %(role)s") % {"role": grant.role.name},
                )
            )
        if not rows:
            return gettext("No app is assigned to this group or the groups above it.")
        return format_html_join(", ", '<a href="{}">{}</a> ({})', rows)

    # --- Saving through the services --------------------------------------------------------

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if not change:
            created = services.create_group(
                name=data["name"],
                parent=data.get("parent"),
                description=data.get("description", ""),
                actor=request.user,
                request=request,
            )
            obj.pk = created.pk
            obj.refresh_from_db()
            return
        services.rename_group(group=obj, name=data["name"], actor=request.user, request=request)
        services.set_group_description(
            group=obj, description=data.get("description", ""), actor=request.user, request=request
        )
        services.set_group_parent(
            group=obj, parent=data.get("parent"), actor=request.user, request=request
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        # Not Django's `form.save_m2m()`: permissions and members change through the services.
        group, data = form.instance, form.cleaned_data
        if "permissions" in data:
            services.set_group_permissions(
                group=group, permissions=data["permissions"], actor=request.user, request=request
            )
        if data.get("remove_members"):
            removed = services.remove_members(
                group=group, users=data["remove_members"], actor=request.user, request=request
            )
            self.message_user(
                request,
                ngettext(
                    "%(count)d person removed from the group.",
                    "%(count)d people removed from the group.",
                    len(removed),
                )
                % {"count": len(removed)},
            )
        if data.get("add_members"):
            added = services.add_members(
                group=group, users=data["add_members"], actor=request.user, request=request
            )
            self.message_user(
                request,
                ngettext(
                    "%(count)d person added to the group.",
                    "%(count)d people added to the group.",
                    len(added),
                )
                % {"count": len(added)},
            )

    def delete_model(self, request: HttpRequest, obj: Group) -> None:
        services.delete_group(group=obj, actor=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Group]) -> None:
        # Subgroups before the groups they sit in: a group is deleted only once it has none.
        parents = dict(GroupProfile.objects.values_list("group_id", "parent_id"))

        def depth(group: Group) -> int:
            level, current = 0, parents.get(group.pk)
            while current is not None and level <= len(parents):
                level, current = level + 1, parents.get(current)
            return level

        for group in sorted(queryset, key=depth, reverse=True):
            services.delete_group(group=group, actor=request.user, request=request)


if admin.site.is_registered(Group):
    admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)
