"""Webhook subscribers (a URL, the event types it wants, its signing secret) and the delivery
log (one row per message sent to a subscriber, updated by the background worker)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Subscriber(models.Model):
    """A system that receives events. Its secret signs every message (Standard Webhooks): it is
    shown once when made and stored encrypted (webhooks/secrets.py), since it must be used again
    to sign; never displayed afterwards."""

    name = models.CharField(_("name"), max_length=100)
    url = models.URLField(_("URL"), max_length=2000)
    event_types = models.JSONField(
        _("event types"), default=list, help_text=_("The event types this subscriber receives.")
    )
    secret_encrypted = models.TextField(_("secret (encrypted)"), editable=False)
    allow_private_network = models.BooleanField(
        _("may call private addresses"),
        default=False,
        help_text=_("Only for a receiver inside the company network (or on this machine)."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)

    class Meta:
        verbose_name = _("webhook subscriber")
        verbose_name_plural = _("webhook subscribers")
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class Delivery(models.Model):
    """One message to one subscriber and what became of it: the delivery log. `message_id` is
    the `webhook-id` the receiver de-duplicates on; a replay keeps it (same message, sent
    again) on a new row, so the log keeps each attempt chain."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        RETRYING = "retrying", _("retrying")
        FAILED = "failed", _("failed")

    subscriber = models.ForeignKey(
        Subscriber,
        verbose_name=_("subscriber"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    message_id = models.CharField(_("message id"), max_length=64)
    event_type = models.CharField(_("event type"), max_length=64)
    # The body exactly as sent (and signed), so a replay sends the same bytes.
    payload = models.TextField(_("payload"))
    audit_event = models.ForeignKey(
        "accounts.AuditEvent",
        verbose_name=_("audit event"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    replay_of = models.ForeignKey(
        "self",
        verbose_name=_("replay of"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replays",
    )
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("replayed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["subscriber", "-created_at"], name="webhook_delivery_recent")
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscriber} ({self.status})"
