"""Token, code, audit and user-session rows inserted with SQL built once per model, instead of
`Model.save()`.

Why this exists: issuing a token is one INSERT (client credentials) or three (a code exchange:
ID, access and refresh token), issuing a code one (the Grant), and `save()` spent more CPU
than the database did: signals, `_prepare_related_fields_for_save`, and the INSERT compiler
rebuilding the same statement each time (SQLInsertCompiler.as_sql ~4 % of a grant's CPU,
cProfile in BENCHMARKS.md).
`insert(obj)` writes one unsaved instance with its model's INSERT text built once, each value
through the field's own `pre_save` and `get_db_prep_save` (what the compiler does: `auto_now`,
DOT's token checksum, JSON, UUID), every value a bound parameter, and the statement prepared
on PostgreSQL (`prepared.statement_cursor`).

What it does not do, on purpose: send `pre_save`/`post_save` (nothing in this project or in
DOT listens to them for tokens; `tests/oidc/test_token_writes.py` checks that stays true) or
handle inherited (multi-table) models. Only for models with an auto-incremented primary key.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from django.db import connections, models, router
from django.db.models.signals import post_save, pre_save

from oauth_clients.prepared import statement_cursor


def insert_fields(model: type[models.Model]) -> list[models.Field]:
    """The columns an INSERT of `model` writes: every concrete field but the primary key."""
    return [field for field in model._meta.local_concrete_fields if not field.primary_key]


# Values psycopg adapts exactly as Django's preparation would leave them on PostgreSQL (a
# string, an integer, an aware datetime, a UUID): `get_db_prep_save` is skipped for them there
# (~9 % of a refresh grant's CPU went into it). Exact types: a str or int subclass (an Enum
# such as TextChoices) is adapted differently by psycopg. JSON and IP address columns always
# take Django's path (an address's preparation turns "" into NULL and normalises IPv6).
_NATIVE_ON_POSTGRESQL = frozenset({str, int, bool, uuid.UUID, type(None), datetime})
_ALWAYS_PREPARED = (models.JSONField, models.GenericIPAddressField)


def values(fields: list[models.Field], obj: models.Model, connection: Any) -> list[Any]:
    """Each field's database value for `obj`, as SQLInsertCompiler prepares it."""
    if connection.vendor != "postgresql":
        return [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
    prepared = []
    for field in fields:
        value = field.pre_save(obj, True)
        if (
            isinstance(field, _ALWAYS_PREPARED)
            or type(value) not in _NATIVE_ON_POSTGRESQL
            or (type(value) is datetime and value.tzinfo is None)
        ):
            value = field.get_db_prep_save(value, connection)
        prepared.append(value)
    return prepared


@functools.cache
def _insert_sql(model: type[models.Model], alias: str) -> str:
    """The INSERT of one `model` row."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    fields = insert_fields(model)
    columns = ", ".join(quote(field.column) for field in fields)
    source = "VALUES (" + ", ".join(["%s"] * len(fields)) + ")"
    return (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {source} "
        f"RETURNING {quote(model._meta.pk.column)}"
    )


def _write(obj: models.Model, alias: str, sql: str, params: list[Any]) -> bool:
    """Run one INSERT of `obj` (prepared on PostgreSQL); stamp it saved if a row was written."""
    with statement_cursor(connections[alias]) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    obj.pk = row[0]
    obj._state.adding, obj._state.db = False, alias
    return True


def listened_to(model: type[models.Model]) -> bool:
    """Whether anything receives `model`'s save signals (which `insert` does not send)."""
    return pre_save.has_listeners(model) or post_save.has_listeners(model)


def insert(obj: models.Model, *, along: tuple[str, list[Any]] | None = None) -> models.Model:
    """INSERT the unsaved `obj` in one (prepared) statement; it comes back saved, with its pk.

    `along`: an UPDATE (SQL and parameters, from `update`) written with it: in the same statement
    on PostgreSQL, as a data-modifying CTE (one round trip, atomic), just before it elsewhere.
    """
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    sql = _insert_sql(model, alias)
    params = values(insert_fields(model), obj, connection)
    if along is not None and connection.vendor == "postgresql":
        sql = f"WITH along AS ({along[0]}) {sql}"
        params = [*along[1], *params]
    elif along is not None:
        with connection.cursor() as cursor:
            cursor.execute(*along)
    _write(obj, alias, sql, params)  # an unconditional INSERT always writes its row
    return obj


@functools.cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], alias: str) -> str:
    quote = connections[alias].ops.quote_name
    columns = ", ".join(f"{quote(model._meta.get_field(name).column)} = %s" for name in names)
    return (
        f"UPDATE {quote(model._meta.db_table)} SET {columns} "
        f"WHERE {quote(model._meta.pk.column)} = %s"
    )


def update(obj: models.Model, *names: str) -> tuple[str, list[Any]]:
    """The UPDATE of `obj`'s row writing its current values of the fields `names` (what
    `save(update_fields=names)` writes, without its signals), for `insert(..., along=...)`."""
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    fields = [model._meta.get_field(name) for name in names]
    params = [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]
    return _update_sql(model, names, alias), [*params, obj.pk]
