"""Refresh-token rotation as one SQL statement on PostgreSQL (RFC 9700 §4.14.2).

Why this exists: a refresh grant was the slowest token operation (~240/s on 2 vCPUs against a
target of 500). Through the ORM it is BEGIN, a locking SELECT, the ID-token INSERT, two UPDATEs,
two INSERTs and COMMIT: eight round trips, each with its own Python statement building, and a
row lock held across them (BENCHMARKS.md, finding 23). PostgreSQL can do all of the writes in one
statement with data-modifying CTEs, which Django's ORM cannot express:

    WITH rotated AS (UPDATE refresh token SET revoked = now WHERE id = old AND revoked IS NULL
                     RETURNING id),
         retired AS (DELETE old access token WHERE id = … AND rotated exists),
         new_id  AS (INSERT ID token  SELECT … FROM rotated RETURNING id),
         new_at  AS (INSERT access token (id_token_id from new_id) SELECT … FROM rotated …),
         new_rt  AS (INSERT refresh token (access_token_id from new_at) SELECT … FROM new_at …)
    SELECT ids

One statement is atomic in autocommit, so the grant needs no transaction and no row lock: two
requests racing with the same refresh token both reach the conditional UPDATE, PostgreSQL makes
the second wait for the first and re-checks `revoked IS NULL`, finds the row rotated and updates
nothing — and because every INSERT selects from `rotated`, the loser writes nothing at all. It is
then answered `invalid_grant`, exactly as the ORM path answers it.

Rows are built as ordinary unsaved model instances; each column's value goes through the field's
own `pre_save` and `get_db_prep_save` (what Django's INSERT compiler does: `auto_now`, DOT's
token checksum, JSON, UUID), and every value is a bound parameter cast to the column's type. The
SQL text is built once per set of tables from the models' metadata, so a field added to a token
model is written here without a change. Other databases keep the ORM path in `token_policy`.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connections, models, router
from oauth2_provider.models import (
    get_access_token_model,
    get_id_token_model,
    get_refresh_token_model,
)

from oauth_clients.prepared import statement_cursor
from oauth_clients.writes import insert_fields, values


@functools.cache
def supported() -> bool:
    """Whether the refresh grant's database can rotate in one statement (asked several times
    per grant; the answer is fixed for the life of the process)."""
    return connections[router.db_for_write(get_refresh_token_model())].vendor == "postgresql"


@functools.cache
def _statement(alias: str, with_id_token: bool) -> tuple[str, tuple[list, list, list]]:
    """The SQL for one rotation, and the fields whose values fill its parameters, in order.

    Every name in it is a table or column from the models' metadata, quoted by the backend;
    every value is a bound parameter (pyproject.toml exempts this file from ruff's S608)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    refresh_model = get_refresh_token_model()
    access_model = get_access_token_model()
    id_model = get_id_token_model()
    timestamp = models.DateTimeField().cast_db_type(connection)

    def table(model: type[models.Model]) -> str:
        return quote(model._meta.db_table)

    def column(model: type[models.Model], name: str) -> str:
        return quote(model._meta.get_field(name).column)

    def pk(model: type[models.Model]) -> str:
        return quote(model._meta.pk.column)

    def insert(model: type[models.Model], source: str, linked: dict[str, str]) -> tuple[str, list]:
        """INSERT … SELECT one row FROM `source`; `linked` columns come from sub-selects."""
        names, selected, fields = [], [], []
        for field in insert_fields(model):
            names.append(quote(field.column))
            if field.name in linked:
                selected.append(linked[field.name])
            else:
                selected.append(f"CAST(%s AS {field.cast_db_type(connection)})")
                fields.append(field)
        sql = (
            f"INSERT INTO {table(model)} ({', '.join(names)}) "
            f"SELECT {', '.join(selected)} FROM {source} RETURNING {pk(model)}"
        )
        return sql, fields

    # Parameters: now, now, the old refresh token's id; its access token's id; then the new
    # rows' values.
    rotated = (
        f"UPDATE {table(refresh_model)} SET "
        f"{column(refresh_model, 'revoked')} = CAST(%s AS {timestamp}), "
        f"{column(refresh_model, 'updated')} = CAST(%s AS {timestamp}), "
        f"{column(refresh_model, 'access_token')} = NULL "
        f"WHERE {pk(refresh_model)} = %s AND {column(refresh_model, 'revoked')} IS NULL "
        f"RETURNING {pk(refresh_model)}"
    )
    # The previous access token dies with its pair: deleted. An UPDATE of `expires` (indexed)
    # cannot be HOT, so it wrote a new row version and an entry in each of the table's indexes;
    # a DELETE only marks the row (BENCHMARKS.md round 7). Its one referrer, the old refresh
    # token, lets go of it in `rotated`; the foreign key is checked at the end of the statement.
    retired = (
        f"DELETE FROM {table(access_model)} "
        f"WHERE {pk(access_model)} = %s AND EXISTS (SELECT 1 FROM rotated)"
    )
    parts = [f"rotated AS ({rotated})", f"retired AS ({retired})"]
    id_fields: list = []
    access_links: dict[str, str] = {}
    new_id = "NULL"
    if with_id_token:
        id_sql, id_fields = insert(id_model, "rotated", {})
        parts.append(f"new_id AS ({id_sql})")
        new_id = f"(SELECT {pk(id_model)} FROM new_id)"
        access_links["id_token"] = new_id
    at_sql, at_fields = insert(access_model, "rotated", access_links)
    parts.append(f"new_at AS ({at_sql})")
    new_at = f"new_at.{pk(access_model)}"
    rt_sql, rt_fields = insert(refresh_model, "new_at", {"access_token": new_at})
    parts.append(f"new_rt AS ({rt_sql})")
    new_rt = f"(SELECT {pk(refresh_model)} FROM new_rt)"
    sql = f"WITH {', '.join(parts)} SELECT {new_at}, {new_rt}, {new_id} FROM new_at"
    return sql, (id_fields, at_fields, rt_fields)


def rotate(
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
    connection = connections[alias]
    sql, (id_fields, at_fields, rt_fields) = _statement(alias, id_token is not None)
    params: list[Any] = [now, now, previous.pk, previous.access_token_id]
    if id_token is not None:
        params += values(id_fields, id_token, connection)
    params += values(at_fields, access_token, connection)
    params += values(rt_fields, refresh_token, connection)
    # Parsed and planned once per connection (idp/db/postgresql: prepared_cursor).
    with statement_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    access_token.pk, refresh_token.pk = row[0], row[1]
    refresh_token.access_token = access_token
    if id_token is not None:
        id_token.pk = row[2]
        access_token.id_token = id_token
    for obj in (access_token, refresh_token, id_token):
        if obj is not None:
            obj._state.adding, obj._state.db = False, alias
    return True
