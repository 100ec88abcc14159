"""SCIM tokens in the admin: issued through `scim.services` (the token shown once, on the next
page, from the session), listed with scope, expiry and last use, revoked by an action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from scim import services
from scim.models import ScimToken

ONE_TIME_TOKEN_KEY = "scim:one_time_token"  # noqa: S105 (a session key name)


class IssueTokenForm(forms.ModelForm):
    expires_in_days = forms.IntegerField(
        label=gettext_lazy("Expires after (days)"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=gettext_lazy("Empty: never expires (revoke it when the client goes)."),
    )

    class Meta:
        model = ScimToken
        fields = ["name", "read_only", "may_manage_users", "may_manage_groups"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("may_manage_users") and not data.get("may_manage_groups"):
            raise ValidationError(_("A SCIM token must cover users, groups or both."))
        return data


@admin.register(ScimToken)
class ScimTokenAdmin(admin.ModelAdmin):
    form = IssueTokenForm
    list_display = [
        "name",
        "prefix",
        "read_only",
        "may_manage_users",
        "may_manage_groups",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    search_fields = ["name"]
    actions = ["revoke_tokens"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [
            "name",
            "prefix",
            "read_only",
            "may_manage_users",
            "may_manage_groups",
            "created_at",
            "created_by",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "read_only", "may_manage_users", "may_manage_groups", "expires_in_days"]
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, never deleted: the list keeps who had access

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        token, plain = services.issue_token(
            name=form.cleaned_data["name"],
            read_only=form.cleaned_data["read_only"],
            users=form.cleaned_data["may_manage_users"],
            groups=form.cleaned_data["may_manage_groups"],
            expires_in_days=form.cleaned_data.get("expires_in_days"),
            actor=request.user,
            request=request,
        )
        obj.pk, obj.prefix, obj.expires_at = token.pk, token.prefix, token.expires_at
        request.session[ONE_TIME_TOKEN_KEY] = {"token": token.pk, "plain": plain}

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        return HttpResponseRedirect(reverse("admin:scim_scimtoken_issued", args=[obj.pk]))

    def get_urls(self) -> list[URLPattern]:
        issued = self.admin_site.admin_view(self.issued_view)
        return [
            path("<int:token_id>/issued/", issued, name="scim_scimtoken_issued"),
            *super().get_urls(),
        ]

    def issued_view(self, request: HttpRequest, token_id: int) -> HttpResponse:
        """The token, once: taken out of the session as the page is built."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        token = ScimToken.objects.filter(pk=token_id).first()
        kept = request.session.get(ONE_TIME_TOKEN_KEY) or {}
        plain = ""
        if token is not None and kept.get("token") == token.pk:
            plain = str(kept.get("plain", ""))
            del request.session[ONE_TIME_TOKEN_KEY]
        context = {
            **self.admin_site.each_context(request),
            "title": _("SCIM token issued"),
            "opts": self.model._meta,
            "token": token,
            "plain": plain,
            "scim_url": request.build_absolute_uri("/scim/v2/"),
        }
        response = TemplateResponse(request, "admin/scim/scimtoken/issued.html", context)
        add_never_cache_headers(response)
        return response

    @admin.action(description=gettext_lazy("Revoke the selected SCIM tokens"))
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ScimToken]) -> None:
        revoked = sum(
            services.revoke_token(token=token, actor=request.user, request=request)
            for token in queryset
        )
        self.message_user(
            request,
            ngettext("%(count)d SCIM token revoked.", "%(count)d SCIM tokens revoked.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
