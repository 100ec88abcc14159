"""Which users and groups the company directory keeps, and the record of each sync."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils.translation import gettext_lazy as _


class DirectoryAccount(models.Model):
    """A user whose source is the directory (no row: a local account). The password is the
    directory's: the user's own is unusable."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="directory_account",
        verbose_name=_("user"),
    )
    dn = models.CharField(_("distinguished name"), max_length=512, unique=True)
    source = models.CharField(_("source"), max_length=255)
    last_seen_at = models.DateTimeField(_("last seen in the directory"), null=True, blank=True)
    # Deactivated here because the directory disabled or removed them: the sync activates them
    # again when the directory does (never someone an administrator deactivated).
    deactivated_by_directory = models.BooleanField(_("deactivated by the directory"), default=False)

    class Meta:
        verbose_name = _("directory account")
        verbose_name_plural = _("directory accounts")

    def __str__(self) -> str:
        return self.dn


class DirectoryGroup(models.Model):
    """A group mirrored from the directory: the sync keeps its directory members."""

    group = models.OneToOneField(
        Group, on_delete=models.CASCADE, related_name="directory_group", verbose_name=_("group")
    )
    dn = models.CharField(_("distinguished name"), max_length=512, unique=True)
    last_seen_at = models.DateTimeField(_("last seen in the directory"), null=True, blank=True)

    class Meta:
        verbose_name = _("directory group")
        verbose_name_plural = _("directory groups")

    def __str__(self) -> str:
        return self.dn


class DirectorySync(models.Model):
    """One run of the sync: what it changed and what went wrong."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        PARTIAL = "partial", _("Finished with errors")
        FAILED = "failed", _("Failed")

    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    trigger = models.CharField(_("started by"), max_length=32)
    users_seen = models.PositiveIntegerField(_("people in the directory"), default=0)
    users_created = models.PositiveIntegerField(_("users created"), default=0)
    users_updated = models.PositiveIntegerField(_("users updated"), default=0)
    users_deactivated = models.PositiveIntegerField(_("users deactivated"), default=0)
    users_activated = models.PositiveIntegerField(_("users activated"), default=0)
    groups_created = models.PositiveIntegerField(_("groups created"), default=0)
    groups_updated = models.PositiveIntegerField(_("groups updated"), default=0)
    memberships_added = models.PositiveIntegerField(_("memberships added"), default=0)
    memberships_removed = models.PositiveIntegerField(_("memberships removed"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True)

    class Meta:
        verbose_name = _("directory sync")
        verbose_name_plural = _("directory syncs")
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M} {self.get_status_display()}"
