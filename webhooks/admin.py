"""Webhook subscribers and their delivery log in the admin, with replay.

Subscribers are made with `manage.py webhooks create` (it shows the secret once); here an
administrator renames one, changes its event types, disables or enables it, and reads its
deliveries. Every change goes through webhooks/services.py (audited). Nothing here shows a
secret, and nothing deletes (a disabled subscriber keeps its log).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from webhooks import services
from webhooks.events import PUBLIC_TYPES
from webhooks.models import Delivery, Subscriber


class SubscriberForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=[(name, name) for name in PUBLIC_TYPES],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Subscriber
        fields = ["name", "event_types", "is_active"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = ["name", "url", "is_active", "deliveries_link"]
    list_filter = ["is_active"]
    readonly_fields = ["url", "allow_private_network", "created_at", "deliveries_link"]
    fields = [
        "name",
        "url",
        "allow_private_network",
        "event_types",
        "is_active",
        "created_at",
        "deliveries_link",
    ]

    @admin.display(description=_("delivery log"))
    def deliveries_link(self, subscriber: Subscriber) -> str:
        url = (
            reverse("admin:webhooks_delivery_changelist")
            + f"?subscriber__id__exact={subscriber.pk}"
        )
        return format_html('<a href="{}">{}</a>', url, _("Deliveries"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made with `manage.py webhooks create`, which shows the secret once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Subscriber, form: Any, change: bool) -> None:
        stored = Subscriber.objects.get(pk=obj.pk)
        services.update_subscriber(
            subscriber=stored,
            name=form.cleaned_data["name"],
            event_types=form.cleaned_data["event_types"],
            is_active=form.cleaned_data["is_active"],
            actor=request.user,
            request=request,
        )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "event_type",
        "subscriber",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
    ]
    list_filter = ["status", "event_type", "subscriber"]
    list_select_related = ["subscriber"]
    search_fields = ["message_id"]
    actions = ["replay"]
    readonly_fields = [
        "subscriber",
        "message_id",
        "event_type",
        "payload",
        "audit_event",
        "replay_of",
        "replayed_by",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "last_attempt_at",
        "next_attempt_at",
        "finished_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_replay_permission(self, request: HttpRequest) -> bool:
        # Sending a message again is a change to what a subscriber receives.
        return bool(request.user.has_perm("webhooks.change_subscriber"))

    @admin.action(description=_("Send the selected messages again"), permissions=["replay"])
    def replay(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        count = 0
        for delivery in queryset.select_related("subscriber"):
            services.replay_delivery(delivery=delivery, actor=request.user, request=request)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d message queued again.", "%(count)d messages queued again.", count)
            % {"count": count},
            messages.SUCCESS,
        )
