"""This database's identity, for what is kept outside it (idp/cache_keys.py)."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


class Installation(models.Model):
    """One row, written by this app's first migration: a database created anew (a re-seed, a
    restore into a new database) gets a new one, so the shared cache's keys, which carry it,
    never meet the entries of another database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("installation")

    def __str__(self) -> str:
        return str(self.id)
