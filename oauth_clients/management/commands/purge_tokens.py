"""Delete expired tokens and codes in small batches, each its own short transaction.

`manage.py purge_tokens [--batch-size 2000] [--pause 0.05] [--margin 3600]`; run it from cron or
a Kubernetes CronJob. Why not DOT's `cleartokens`: it counts the whole remaining set before every
batch (a full scan per batch on a large table) and loads every row into Django's delete
collector. Here each batch selects at most `--batch-size` primary keys through the expiry
indexes and deletes them, so grants running at the same time wait for at most one small batch
(measured in BENCHMARKS.md). What is kept, and why:
- refresh tokens until their family's absolute expiry when revoked (reuse detection needs the
  rotated ones, RFC 9700 §4.14.2), until their idle expiry when live;
- access tokens still paired with a live refresh token (the refresh grant retires them);
- consumed codes for `--margin` after expiry, so a replay shortly after is still traced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)


def purge_in_batches(
    queryset: QuerySet,
    *,
    batch_size: int,
    pause: float,
    detach: Callable[[list[Any]], None] | None = None,
) -> int:
    """Delete the rows of `queryset` `batch_size` at a time; returns how many were deleted.

    Each batch is one short transaction: select the primary keys, `detach` the rows that point
    at them (the SET_NULL Django's collector would do), delete with one statement. The querysets
    below only select rows nothing else CASCADEs from, so the collector's per-row work (loading
    every object) is skipped: a profile showed it was most of the purge's time.
    """
    model = queryset.model
    total = 0
    while True:
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True).order_by()[:batch_size])
            if not ids:
                return total
            if detach is not None:
                detach(ids)
            doomed = model.objects.filter(pk__in=ids)
            doomed._raw_delete(doomed.db)
        total += len(ids)
        if pause:
            time.sleep(pause)


class Command(BaseCommand):
    help = "Delete expired tokens and codes in small batches (safe while the IdP serves)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument("--pause", type=float, default=0.05, help="seconds between batches")
        parser.add_argument(
            "--margin", type=int, default=3600, help="seconds past expiry before rows go"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(seconds=options["margin"])
        size, pause = options["batch_size"], options["pause"]
        refresh_model = get_refresh_token_model()
        access_model = get_access_token_model()

        def detach_refresh_tokens(ids: list[Any]) -> None:
            # AccessToken.source_refresh_token is SET_NULL.
            access_model.objects.filter(source_refresh_token__in=ids).update(
                source_refresh_token=None
            )

        counts = {
            "refresh_tokens": purge_in_batches(
                refresh_model.objects.filter(
                    Q(family_expires__lt=cutoff) | Q(revoked__isnull=True, expires__lt=cutoff)
                ),
                batch_size=size,
                pause=pause,
                detach=detach_refresh_tokens,
            ),
            "access_tokens": purge_in_batches(
                # Without a refresh token pointing at them (RefreshToken.access_token).
                access_model.objects.filter(expires__lt=cutoff, refresh_token__isnull=True),
                batch_size=size,
                pause=pause,
            ),
            "id_tokens": purge_in_batches(
                # Without an access token pointing at them (AccessToken.id_token CASCADEs).
                get_id_token_model().objects.filter(expires__lt=cutoff, access_token__isnull=True),
                batch_size=size,
                pause=pause,
            ),
            "codes": purge_in_batches(
                get_grant_model().objects.filter(expires__lt=cutoff),
                batch_size=size,
                pause=pause,
            ),
        }
        self.stdout.write(", ".join(f"{name}: {count}" for name, count in counts.items()))
