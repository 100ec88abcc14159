"""Outbound provisioning: an app's SCIM endpoint, who was provisioned there, the delivery log."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The attributes of a SCIM User (RFC 7643 §4.1) an app may receive besides `userName`,
# `active` and `externalId`, which every app gets.
USER_ATTRIBUTES = {
    "name": _("name (given and family name)"),
    "displayName": _("display name"),
    "emails": _("e-mail address"),
    "title": _("job title"),
    "roles": _("the app's roles"),
}
DEFAULT_USER_ATTRIBUTES = ["name", "displayName", "emails"]


def default_user_attributes() -> list[str]:
    return list(DEFAULT_USER_ATTRIBUTES)


class ScimTarget(models.Model):
    """An app's SCIM 2.0 service provider, to which the IdP pushes the people who may use it."""

    class Deprovision(models.TextChoices):
        DEACTIVATE = "deactivate", _("deactivate (PATCH active=false)")
        DELETE = "delete", _("delete (DELETE /Users/{id})")

    client = models.OneToOneField(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        verbose_name=_("app"),
        on_delete=models.CASCADE,
        related_name="scim_target",
    )
    base_url = models.URLField(
        _("SCIM base URL"),
        max_length=500,
        help_text=_("The app's SCIM 2.0 endpoint, e.g. https://app.example.com/scim/v2"),
    )
    # Fernet token (provisioning/crypto.py); never shown once saved.
    token_encrypted = models.TextField(_("bearer token (encrypted)"), blank=True, editable=False)
    enabled = models.BooleanField(_("enabled"), default=True)
    user_attributes = models.JSONField(
        _("user attributes sent"), default=default_user_attributes, blank=True
    )
    enterprise_extension = models.BooleanField(
        _("send the enterprise extension"),
        default=False,
        help_text=_("employeeNumber and department (RFC 7643 §4.3)"),
    )
    deprovision = models.CharField(
        _("when someone may no longer use the app"),
        max_length=16,
        choices=Deprovision.choices,
        default=Deprovision.DEACTIVATE,
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("changed"), auto_now=True)
    last_sync_at = models.DateTimeField(_("last full sync"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("SCIM provisioning target")
        verbose_name_plural = _("SCIM provisioning targets")

    def __str__(self) -> str:
        return str(self.client)


class ProvisionedUser(models.Model):
    """A person as the app's SCIM server knows them: its id for them and what was last sent."""

    target = models.ForeignKey(ScimTarget, on_delete=models.CASCADE, related_name="users")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provisioned_to"
    )
    remote_id = models.CharField(_("id at the app"), max_length=255)
    active = models.BooleanField(_("active at the app"), default=True)
    # SHA-256 of the last resource sent: unchanged people are not sent again.
    sent_hash = models.CharField(_("last sent (hash)"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("first provisioned"), default=timezone.now)
    updated_at = models.DateTimeField(_("last provisioned"), auto_now=True)

    class Meta:
        verbose_name = _("provisioned user")
        verbose_name_plural = _("provisioned users")
        constraints = [
            models.UniqueConstraint(fields=["target", "user"], name="provisioned_user_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.remote_id}"


class ProvisioningDelivery(models.Model):
    """One person brought up to date at one app: the per-app delivery log the admin reads.

    What is sent (create, update, deactivate, delete) is decided when the worker runs it, from
    the state then, so a row queued before a later change never sends stale data.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RETRYING = "retrying", _("retrying")
        SENT = "sent", _("sent")
        UNCHANGED = "unchanged", _("nothing to change")
        FAILED = "failed", _("failed")

    class Action(models.TextChoices):
        NONE = "", _("(decided when sent)")
        CREATE = "create", _("create")
        LINK = "link", _("link to an existing account")
        UPDATE = "update", _("update")
        DEACTIVATE = "deactivate", _("deactivate")
        DELETE = "delete", _("delete")

    target = models.ForeignKey(ScimTarget, on_delete=models.CASCADE, related_name="deliveries")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    user_repr = models.CharField(_("user (as recorded)"), max_length=255, blank=True)
    # Set for a person deleted here (provisioning/delivery.py `queue_departures`): the app's
    # account to deactivate or delete, which outlives their row and its links.
    remote_id = models.CharField(_("account at the app"), max_length=255, blank=True)
    reason = models.CharField(_("why"), max_length=64, blank=True)
    action = models.CharField(_("action"), max_length=16, choices=Action.choices, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(
        _("last HTTP status"), null=True, blank=True
    )
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("queued at"), default=timezone.now, db_index=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("provisioning delivery")
        verbose_name_plural = _("provisioning deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "status"], name="provisioning_target_status")]

    def __str__(self) -> str:
        return f"{self.target} {self.user_repr} {self.action or '?'} {self.status}"
