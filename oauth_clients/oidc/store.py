"""The token store: the one way the validator writes a code exchange and a refresh rotation, and
the one module with SQL the ORM cannot express.

Both writes are conditional and atomic, the same on every database:
- `exchange_code` consumes the authorization code (RFC 6749 §4.1.2: used once) and writes the
  ID, access and refresh token and the exchange's audit row; False, with nothing written, when
  the code was consumed first (a concurrent or repeated exchange);
- `exchange_device_code` does the same for an approved device code (RFC 8628 §3.5: used
  once), with its `DeviceAuthorization` row in the code's place;
- `rotate_refresh` retires the refresh token and deletes its access token (RFC 9700 §4.14.2),
  then writes the new ID, access and refresh token; False, with nothing written, when the token
  was rotated first.
Nothing is locked between validation and these writes: the condition settles every race, so the
token view needs no transaction around a grant.

Which implementation serves them is decided once per process by the database
(`implementation()`): `PostgresStore` writes each set in one statement of data-modifying CTEs,
which Django's ORM cannot express; `OrmStore` (any other database) does the same conditional
UPDATE and INSERTs through the ORM in one transaction. tests/oidc/test_token_store.py holds both
to the same rows; docs/performance.md gives what the one statement gains and how to remove it
(use `OrmStore` everywhere).

The statement, for a rotation (the exchange is the same shape with `consumed`, the code's
UPDATE, and an audit row):

    WITH rotated AS (UPDATE refresh token SET revoked = now WHERE id = old AND revoked IS NULL
                     RETURNING id),
         retired AS (DELETE old access token WHERE id = … AND rotated exists),
         new_id  AS (INSERT ID token  SELECT … FROM rotated RETURNING id),
         new_at  AS (INSERT access token (id_token_id from new_id) SELECT … FROM rotated …),
         new_rt  AS (INSERT refresh token (access_token_id from new_at) SELECT … FROM new_at …)
    SELECT ids

One statement is atomic in autocommit: two requests racing with the same refresh token both reach
the conditional UPDATE, PostgreSQL makes the second wait for the first and re-checks `revoked IS
NULL`, finds the row rotated and updates nothing — and because every INSERT selects from
`rotated`, the loser writes nothing at all. It is then answered `invalid_grant`, as with the ORM.

Rows are built as ordinary unsaved model instances; each column's value goes through the field's
own `pre_save` and `get_db_prep_save` (what Django's INSERT compiler does: `auto_now`, DOT's
token checksum, JSON, UUID), and every value is a bound parameter cast to the column's type. The
SQL text is built once per set of tables from the models' metadata, so a field added to a token
model is written here without a change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router, transaction
from oauth2_provider.models import (
    get_access_token_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)

from accounts.models import AuditEvent
from idp.db.prepared import statement_cursor
from oauth_clients.models import DeviceAuthorization


def _write_new_tokens(
    access_token: models.Model, refresh_token: models.Model | None, id_token: models.Model | None
) -> None:
    """INSERT the new rows in their order, each linked to the one written before it."""
    if id_token is not None:
        id_token.save(force_insert=True)
        access_token.id_token = id_token  # type: ignore[attr-defined]
    access_token.save(force_insert=True)
    if refresh_token is not None:
        refresh_token.access_token = access_token  # type: ignore[attr-defined]
        refresh_token.save(force_insert=True)


@dataclass(frozen=True)
class OrmStore:
    """Any database Django speaks: a conditional UPDATE, then the INSERTs, in one transaction."""

    def exchange_code(
        self,
        *,
        grant: models.Model,
        now: Any,
        access_token: models.Model,
        refresh_token: models.Model | None,
        id_token: models.Model | None,
        audit_event: models.Model,
    ) -> bool:
        return self._consume_and_write(
            get_grant_model(),
            grant,
            now=now,
            access_token=access_token,
            refresh_token=refresh_token,
            id_token=id_token,
            audit_event=audit_event,
        )

    def exchange_device_code(
        self,
        *,
        device: models.Model,
        now: Any,
        access_token: models.Model,
        refresh_token: models.Model | None,
        id_token: models.Model | None,
        audit_event: models.Model,
    ) -> bool:
        return self._consume_and_write(
            DeviceAuthorization,
            device,
            now=now,
            access_token=access_token,
            refresh_token=refresh_token,
            id_token=id_token,
            audit_event=audit_event,
        )

    @staticmethod
    def _consume_and_write(
        model: type[models.Model],
        row: models.Model,
        *,
        now: Any,
        access_token: models.Model,
        refresh_token: models.Model | None,
        id_token: models.Model | None,
        audit_event: models.Model,
    ) -> bool:
        """`row` (a code or a device code, both with `consumed_at`) consumed if unused, then
        the new rows, in one transaction."""
        with transaction.atomic(using=router.db_for_write(model)):
            consumed = model._default_manager.filter(pk=row.pk, consumed_at__isnull=True).update(
                consumed_at=now
            )
            if not consumed:
                return False
            _write_new_tokens(access_token, refresh_token, id_token)
            audit_event.save(force_insert=True)
        return True

    def rotate_refresh(
        self,
        *,
        previous: models.Model,
        now: Any,
        access_token: models.Model,
        refresh_token: models.Model,
        id_token: models.Model | None,
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
    """PostgreSQL: each write set is one statement (below), atomic in autocommit: no BEGIN, no
    COMMIT, no row lock."""

    def exchange_code(self, *, grant: models.Model, **rows: Any) -> bool:
        return _exchange(get_grant_model(), grant, **rows)

    def exchange_device_code(self, *, device: models.Model, **rows: Any) -> bool:
        return _exchange(DeviceAuthorization, device, **rows)

    def rotate_refresh(self, **rows: Any) -> bool:
        return _rotate(**rows)


@functools.cache
def implementation() -> OrmStore | PostgresStore:
    """The store for the token tables' database, chosen once per process."""
    vendor = connections[router.db_for_write(get_refresh_token_model())].vendor
    return PostgresStore() if vendor == "postgresql" else OrmStore()


# ----------------------------------------------------------------------------- PostgreSQL's SQL


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    """The columns an INSERT of `model` writes: every concrete field but the primary key."""
    return [field for field in model._meta.local_concrete_fields if not field.primary_key]


def _values(fields: list[models.Field], obj: models.Model, connection: Any) -> list[Any]:
    """Each field's database value for `obj`, as Django's INSERT compiler prepares it."""
    return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]


class _SQL:
    """Names and INSERT … SELECT pieces of one connection, quoted by its backend.

    Every name is a table or column from the models' metadata; every value a bound parameter
    cast to its column's type (pyproject.toml exempts this file from ruff's S608)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.quote = connection.ops.quote_name
        self.timestamp = models.DateTimeField().cast_db_type(connection)  # type: ignore[attr-defined]

    def table(self, model: type[models.Model]) -> str:
        return self.quote(model._meta.db_table)

    def column(self, model: type[models.Model], name: str) -> str:
        return self.quote(model._meta.get_field(name).column)  # type: ignore[union-attr]

    def pk(self, model: type[models.Model]) -> str:
        return self.quote(model._meta.pk.column)

    def insert(
        self, model: type[models.Model], source: str, linked: dict[str, str]
    ) -> tuple[str, list]:
        """INSERT … SELECT one row FROM `source`; `linked` columns come from sub-selects."""
        names, selected, fields = [], [], []
        for field in _insert_fields(model):
            names.append(self.quote(field.column))
            if field.name in linked:
                selected.append(linked[field.name])
            else:
                selected.append(f"CAST(%s AS {field.cast_db_type(self.connection)})")  # type: ignore[attr-defined]
                fields.append(field)
        sql = (
            f"INSERT INTO {self.table(model)} ({', '.join(names)}) "
            f"SELECT {', '.join(selected)} FROM {source} RETURNING {self.pk(model)}"
        )
        return sql, fields

    def new_tokens(
        self, source: str, with_id_token: bool, with_refresh_token: bool
    ) -> tuple[list[str], str, tuple[list, list, list]]:
        """The CTEs inserting a grant's ID token (optional), access token and refresh token
        (optional), each row only if `source` returned one; the SELECT list of their ids (access,
        refresh, ID token); the fields whose values fill their parameters, in order."""
        access_model = get_access_token_model()
        refresh_model = get_refresh_token_model()
        id_model = get_id_token_model()
        parts: list[str] = []
        id_fields: list = []
        access_links: dict[str, str] = {}
        new_id = "NULL"
        if with_id_token:
            id_sql, id_fields = self.insert(id_model, source, {})
            parts.append(f"new_id AS ({id_sql})")
            new_id = f"(SELECT {self.pk(id_model)} FROM new_id)"
            access_links["id_token"] = new_id
        at_sql, at_fields = self.insert(access_model, source, access_links)
        parts.append(f"new_at AS ({at_sql})")
        new_at = f"new_at.{self.pk(access_model)}"
        rt_fields: list = []
        new_rt = "NULL"
        if with_refresh_token:
            rt_sql, rt_fields = self.insert(refresh_model, "new_at", {"access_token": new_at})
            parts.append(f"new_rt AS ({rt_sql})")
            new_rt = f"(SELECT {self.pk(refresh_model)} FROM new_rt)"
        return parts, f"{new_at}, {new_rt}, {new_id}", (id_fields, at_fields, rt_fields)


@functools.cache
def _statement(alias: str, with_id_token: bool) -> tuple[str, tuple[list, list, list]]:
    """The SQL for one rotation, and the fields whose values fill its parameters, in order."""
    sql = _SQL(connections[alias])
    refresh_model = get_refresh_token_model()
    access_model = get_access_token_model()
    timestamp = sql.timestamp
    # Parameters: now, now, the old refresh token's id; its access token's id; then the new
    # rows' values.
    rotated = (
        f"UPDATE {sql.table(refresh_model)} SET "
        f"{sql.column(refresh_model, 'revoked')} = CAST(%s AS {timestamp}), "
        f"{sql.column(refresh_model, 'updated')} = CAST(%s AS {timestamp}), "
        f"{sql.column(refresh_model, 'access_token')} = NULL "
        f"WHERE {sql.pk(refresh_model)} = %s AND {sql.column(refresh_model, 'revoked')} IS NULL "
        f"RETURNING {sql.pk(refresh_model)}"
    )
    # The previous access token dies with its pair: deleted, as the ORM store does. Its one
    # referrer, the old refresh token, lets go of it in `rotated`; the foreign key is checked
    # at the end of the statement.
    retired = (
        f"DELETE FROM {sql.table(access_model)} "
        f"WHERE {sql.pk(access_model)} = %s AND EXISTS (SELECT 1 FROM rotated)"
    )
    parts, ids, fields = sql.new_tokens("rotated", with_id_token, with_refresh_token=True)
    parts = [f"rotated AS ({rotated})", f"retired AS ({retired})", *parts]
    return f"WITH {', '.join(parts)} SELECT {ids} FROM new_at", fields


def _rotate(
    *,
    previous: models.Model,
    now: Any,
    access_token: models.Model,
    refresh_token: models.Model,
    id_token: models.Model | None,
) -> bool:
    """Retire `previous` (and its access token) and insert the unsaved new rows, atomically.

    False when `previous` was already rotated (a concurrent or repeated use): nothing written.
    On success the new instances carry their primary keys and are marked as saved.
    """
    alias = router.db_for_write(get_refresh_token_model())
    sql, fields = _statement(alias, id_token is not None)
    row = _run(
        alias,
        sql,
        [now, now, previous.pk, previous.access_token_id],  # type: ignore[attr-defined]
        fields,
        (id_token, access_token, refresh_token),
    )
    if row is None:
        return False
    _saved(alias, row, access_token, refresh_token, id_token)
    return True


@functools.cache
def _exchange_statement(
    alias: str, grant_model: type[models.Model], with_id_token: bool, with_refresh_token: bool
) -> tuple[str, tuple[list, list, list], list]:
    """The SQL for one code (or device code: `grant_model`) exchange, the token rows' fields
    and the audit row's fields."""
    sql = _SQL(connections[alias])
    # Parameters: now, the code's id; then the new rows' values; then the audit row's.
    consumed = (
        f"UPDATE {sql.table(grant_model)} SET "
        f"{sql.column(grant_model, 'consumed_at')} = CAST(%s AS {sql.timestamp}) "
        f"WHERE {sql.pk(grant_model)} = %s AND {sql.column(grant_model, 'consumed_at')} IS NULL "
        f"RETURNING {sql.pk(grant_model)}"
    )
    parts, ids, fields = sql.new_tokens("consumed", with_id_token, with_refresh_token)
    audit_sql, audit_fields = sql.insert(AuditEvent, "consumed", {})
    parts = [f"consumed AS ({consumed})", *parts, f"audit AS ({audit_sql})"]
    audit_id = f"(SELECT {sql.pk(AuditEvent)} FROM audit)"
    return f"WITH {', '.join(parts)} SELECT {ids}, {audit_id} FROM new_at", fields, audit_fields


def _exchange(
    grant_model: type[models.Model],
    grant: models.Model,
    *,
    now: Any,
    access_token: models.Model,
    refresh_token: models.Model | None,
    id_token: models.Model | None,
    audit_event: models.Model,
) -> bool:
    """Mark the authorization code `grant` (a row of `grant_model`: a Grant, or an approved
    DeviceAuthorization) consumed and insert the unsaved tokens and audit row
    it issues, atomically, in one statement (RFC 6749 §4.1.2: a code is used once).

    The code exchange's counterpart of `_rotate`: BEGIN, a locking SELECT, three INSERTs, the
    UPDATE, the audit INSERT and COMMIT were eight round trips; now the code is read without a
    lock and this statement is the exchange's one write. False when the code was consumed
    first by a concurrent exchange (PostgreSQL re-checks `consumed_at IS NULL` after waiting on
    the winner's row): nothing written. On success every instance carries its primary key.
    """
    alias = router.db_for_write(grant_model)
    sql, fields, audit_fields = _exchange_statement(
        alias, grant_model, id_token is not None, refresh_token is not None
    )
    row = _run(
        alias,
        sql,
        [now, grant.pk],
        fields,
        (id_token, access_token, refresh_token),
        tail=_values(audit_fields, audit_event, connections[alias]),
    )
    if row is None:
        return False
    _saved(alias, row, access_token, refresh_token, id_token)
    audit_event.pk = row[3]
    audit_event._state.adding, audit_event._state.db = False, alias
    return True


def _run(
    alias: str,
    sql: str,
    head: list[Any],
    fields: tuple[list, list, list],
    rows: tuple[models.Model | None, models.Model, models.Model | None],
    tail: list[Any] | None = None,
) -> Any:
    """Run one grant statement: `head` parameters, each new row's values, `tail`; its row."""
    connection = connections[alias]
    params = list(head)
    for row_fields, obj in zip(fields, rows, strict=True):
        if obj is not None:
            params += _values(row_fields, obj, connection)
    params += tail or []
    # Parsed and planned once per connection (idp/db/postgresql: prepared_cursor).
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _saved(
    alias: str,
    row: Any,
    access_token: models.Model,
    refresh_token: models.Model | None,
    id_token: models.Model | None,
) -> None:
    """The new rows' primary keys and links, as `save()` would leave them."""
    access_token.pk = row[0]
    if refresh_token is not None:
        refresh_token.pk = row[1]
        refresh_token.access_token = access_token  # type: ignore[attr-defined]
    if id_token is not None:
        id_token.pk = row[2]
        access_token.id_token = id_token  # type: ignore[attr-defined]
    for obj in (access_token, refresh_token, id_token):
        if obj is not None:
            obj._state.adding, obj._state.db = False, alias
