"""The token store: the one way the validator writes a code exchange and a refresh rotation.

Both are conditional and atomic, the same on every database:
- `exchange_code` consumes the authorization code (RFC 6749 §4.1.2: used once) and writes the
  ID, access and refresh token and the exchange's audit row; False, with nothing written, when
  the code was consumed first (a concurrent or repeated exchange);
- `rotate_refresh` retires the refresh token and deletes its access token (RFC 9700 §4.14.2),
  then writes the new ID, access and refresh token; False, with nothing written, when the token
  was rotated first.
Nothing is locked between validation and these writes: the condition settles every race, so the
token view needs no transaction around a grant.

Which implementation serves them is decided once per process by the database
(`implementation()`): on PostgreSQL each is one statement (oauth_clients/oidc/rotation.py: the SQL
the ORM cannot express, docs/performance.md says what it gains), elsewhere the ORM in one
transaction. tests/oidc/test_token_store.py holds both to the same rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from oauth_clients import writes
from oauth_clients.oidc import rotation


def _write_new_tokens(
    access_token: Model, refresh_token: Model | None, id_token: Model | None
) -> None:
    """INSERT the new rows in their order, each linked to the one written before it."""
    if id_token is not None:
        writes.insert(id_token)
        access_token.id_token = id_token  # type: ignore[attr-defined]
    writes.insert(access_token)
    if refresh_token is not None:
        refresh_token.access_token = access_token  # type: ignore[attr-defined]
        writes.insert(refresh_token)


@dataclass(frozen=True)
class OrmStore:
    """Any database Django speaks: a conditional UPDATE, then the INSERTs, in one transaction."""

    def exchange_code(
        self,
        *,
        grant: Model,
        now: Any,
        access_token: Model,
        refresh_token: Model | None,
        id_token: Model | None,
        audit_event: Model,
    ) -> bool:
        grant_model = get_grant_model()
        with transaction.atomic(using=router.db_for_write(grant_model)):
            consumed = grant_model.objects.filter(pk=grant.pk, consumed_at__isnull=True).update(
                consumed_at=now
            )
            if not consumed:
                return False
            _write_new_tokens(access_token, refresh_token, id_token)
            writes.insert(audit_event)
        return True

    def rotate_refresh(
        self,
        *,
        previous: Model,
        now: Any,
        access_token: Model,
        refresh_token: Model,
        id_token: Model | None,
    ) -> bool:
        refresh_model = get_refresh_token_model()
        with transaction.atomic(using=router.db_for_write(refresh_model)):
            rotated = refresh_model.objects.filter(pk=previous.pk, revoked__isnull=True).update(
                revoked=now, updated=now, access_token=None
            )
            if not rotated:
                return False
            retired = previous.access_token_id  # type: ignore[attr-defined]
            if retired is not None:
                get_access_token_model().objects.filter(pk=retired).delete()
            _write_new_tokens(access_token, refresh_token, id_token)
        return True


@dataclass(frozen=True)
class PostgresStore:
    """PostgreSQL: each write set is one statement of data-modifying CTEs (oauth_clients/
    rotation.py), atomic in autocommit: no BEGIN, no COMMIT, no row lock."""

    def exchange_code(self, **rows: Any) -> bool:
        return rotation.exchange(**rows)

    def rotate_refresh(self, **rows: Any) -> bool:
        return rotation.rotate(**rows)


@functools.cache
def implementation() -> OrmStore | PostgresStore:
    """The store for the token tables' database, chosen once per process."""
    vendor = connections[router.db_for_write(get_refresh_token_model())].vendor
    return PostgresStore() if vendor == "postgresql" else OrmStore()
