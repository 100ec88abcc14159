"""SCIM credentials and what SCIM keeps about people and groups beyond the directory itself."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ScimToken(models.Model):
    """A bearer token an administrator issued to one SCIM client (Entra ID, Okta, an HR system).

    Only a keyed hash of the token is stored (`scim.tokens`); the token is shown once, when it
    is issued. `prefix` (its first characters) lets an administrator tell tokens apart.
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    prefix = models.CharField(_("token starts with"), max_length=16, editable=False)
    token_hash = models.CharField(max_length=128, unique=True, editable=False)
    read_only = models.BooleanField(
        _("read-only"), default=False, help_text=_("The client may read but never change.")
    )
    may_manage_users = models.BooleanField(_("users"), default=True)
    may_manage_groups = models.BooleanField(_("groups"), default=True)
    created_at = models.DateTimeField(_("issued"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("issued by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("SCIM token")
        verbose_name_plural = _("SCIM tokens")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def is_usable(self, *, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def may_use(self, resource_type: str) -> bool:
        """Whether the token covers this resource type ("User" or "Group")."""
        return self.may_manage_users if resource_type == "User" else self.may_manage_groups


class ScimUser(models.Model):
    """What SCIM says about a person that the directory does not hold: the client's own id for
    them (`externalId`), their manager (the enterprise extension), their email's type, and
    whether a client deleted them (RFC 7644 §3.6: a deleted resource answers 404 while the
    account stays, deactivated)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="scim",
    )
    external_id = models.CharField(_("external ID"), max_length=255, blank=True, db_index=True)
    # The enterprise extension's `manager.value`: the SCIM id of the manager's User resource, as
    # the client wrote it (a client may name a manager it provisions later).
    manager_ref = models.CharField(_("manager (SCIM id)"), max_length=255, blank=True)
    # The `type` the client gave the person's email ("work" for Entra ID's default mapping).
    email_type = models.CharField(_("email type"), max_length=255, blank=True)
    deleted_at = models.DateTimeField(_("deleted through SCIM"), null=True, blank=True)

    class Meta:
        verbose_name = _("SCIM user")
        verbose_name_plural = _("SCIM users")

    def __str__(self) -> str:
        return str(self.user)


class ScimGroup(models.Model):
    """A group's `externalId` and its SCIM timestamps (`auth.Group` keeps none)."""

    group = models.OneToOneField(
        Group, primary_key=True, on_delete=models.CASCADE, related_name="scim"
    )
    external_id = models.CharField(_("external ID"), max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("last changed"), default=timezone.now)

    class Meta:
        verbose_name = _("SCIM group")
        verbose_name_plural = _("SCIM groups")

    def __str__(self) -> str:
        return str(self.group)
