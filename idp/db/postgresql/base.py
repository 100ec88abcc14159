"""Django's PostgreSQL backend, with a per-request health check that costs no round trip.

Why: settings keep `CONN_HEALTH_CHECKS` on, so at the first query of every request Django calls
`is_usable()` on the persistent connection (`close_if_health_check_failed`), and Django's
PostgreSQL backend answers it with `SELECT 1`: a full round trip before the request's own first
query. A client-credentials grant needs one INSERT, so the check doubled its round trips; under
load (py-spy, gunicorn 2 workers, PostgreSQL) about 20% of the token endpoints' samples were in
`close_if_health_check_failed` (docs/performance.md has the A/B).

How: between requests a healthy idle connection has nothing to read. The server only writes to
it unprompted when it is going away: the FATAL message of `pg_terminate_backend()` or of a
shutdown, then end of file; a closed socket (RST, peer gone) reads as end of file or an error.
So a zero-timeout poll of the socket tells a dropped connection from a live one without sending
anything. When the socket is readable, or the connection is not idle, Django's own check runs
(`SELECT 1`), which fails on a dying connection, and Django closes it and reconnects for the
query: the request never sees the error.

Also: `prepared_cursor()`, for the few hot statements the IdP compiles itself (the prepared
lookups in idp/db/prepared.py, the refresh rotation in oauth_clients/oidc/store.py). Their
SQL never changes, but through Django's default client-side binding PostgreSQL parses and plans
it again on every request: EXPLAIN showed planning at 0.2-0.3 ms per statement against
0.03-0.06 ms of execution. A prepared statement is parsed and planned
once per connection. Only these statements are prepared (Django's own queries keep client-side
binding, as Django disables psycopg's automatic preparation); `IDP_DB_PREPARED_STATEMENTS=0`
turns it off for a transaction-mode PgBouncer older than 1.21, which cannot hold them.

And: timestamps are parsed by psycopg's C loader. Django registers a timestamptz loader of its
own (`psycopg_any.BaseTzLoader`) that subclasses psycopg's pure-Python one, so with the C
extension installed every timestamp still went through a regular expression and a `replace()`
in Python: 8 % of a userinfo request's CPU (py-spy), which reads five of
them. `_TimestamptzLoader` keeps Django's class and contract but, when the session's time zone is
the one Django would stamp on the value (UTC, as Django configures it), hands each value to
psycopg's own loader, which returns the same datetime with that same tzinfo object.

Limit: a network path that vanished silently (no RST, no FIN) looks idle, so it is found only
when the request's first query fails, as with Django without health checks. Django's `SELECT 1`
would not do better there: it would wait on the same dead path.
"""

from __future__ import annotations

import select
from typing import Any

from django.conf import settings
from django.db.backends.postgresql import base, operations
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from django.utils.asyncio import async_unsafe
from psycopg import adapters, errors, pq

# psycopg prepares a statement when asked (`prepare=True`) only if automatic preparation is not
# disabled (Django sets the threshold to None); a threshold no statement reaches keeps every
# other query unprepared.
_ONLY_WHEN_ASKED = 2**31 - 1


def _has_input(fileno: int) -> bool:
    """Whether the socket has something to read (data, end of file or an error), without waiting."""
    if hasattr(select, "poll"):
        # poll, not select: select() cannot watch descriptors above FD_SETSIZE (1024).
        poller = select.poll()
        poller.register(fileno, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, errored = select.select([fileno], [], [fileno], 0)
    return bool(readable or errored)


# psycopg's loader for timestamptz as text: its C implementation when psycopg[binary] or [c] is
# installed (the registry hands the optimised class out), else the Python one.
_PSYCOPG_TIMESTAMPTZ_LOADER = adapters.get_loader(adapters.types["timestamptz"].oid, pq.Format.TEXT)


class _TimestamptzLoader(BaseTzLoader):
    """Django's loader (`load` gives the value with `tzinfo=self.timezone`), by psycopg's own.

    psycopg's loader gives the instant in the session's time zone, as the connection's tzinfo;
    Django's parses the same text and replaces that tzinfo with its own. When the two tzinfo
    objects are equal the results are identical, so `load` is psycopg's (an instance attribute:
    psycopg calls `loader.load` as found, without a Python frame of ours per value)."""

    def __init__(self, oid: int, context: Any = None) -> None:
        super().__init__(oid, context)
        connection = self.connection
        if connection is not None and connection.info.timezone == self.timezone:
            self.load = _PSYCOPG_TIMESTAMPTZ_LOADER(oid, context).load  # type: ignore[method-assign]


class _PreparingCursor(base.ServerBindingCursor):
    """Server-side binding; every statement prepared on first use, once per connection
    (psycopg keeps the name, at most `prepared_max` of them, least recently used dropped)."""

    def execute(self, query: Any, params: Any = None, *, prepare: Any = None, **kw: Any) -> Any:
        return super().execute(query, params, prepare=True, **kw)


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor: Any, sql: str, params: Any) -> str | None:
        # Django reads the text psycopg sent; a prepared statement is sent by name, so (as
        # Django does under server-side binding) compose it for the query log instead.
        if isinstance(cursor, _PreparingCursor):
            try:
                return self.compose_sql(sql, params)
            except errors.DataError:
                return sql
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def get_new_connection(self, conn_params: dict) -> Any:
        connection = super().get_new_connection(conn_params)
        if self.timezone is not None:
            # In place of Django's (`register_tzloader`), for this connection only; Django's
            # `create_cursor` still finds `timezone` on it and registers its own per cursor if
            # the connection's ever disagreed.
            loader = type(
                "TimestamptzLoader",
                (_TimestamptzLoader,),
                {"timezone": self.timezone, "__module__": __name__},
            )
            connection.adapters.register_loader("timestamptz", loader)
        if connection.prepare_threshold is None and _prepared_statements():
            connection.prepare_threshold = _ONLY_WHEN_ASKED
        return connection

    @async_unsafe
    def prepared_cursor(self) -> Any:
        """A cursor (Django's wrapper: query logging, execute wrappers) whose statements
        PostgreSQL parses and plans once per connection. For SQL with bound parameters only."""
        if not _prepared_statements():
            return self.cursor()
        # What Django's `cursor()` does (`_cursor`), with our cursor class.
        self.close_if_health_check_failed()
        self.ensure_connection()
        with self.wrap_database_errors:
            return self._prepare_cursor(_PreparingCursor(self.connection))

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.pgconn.transaction_status != pq.TransactionStatus.IDLE or _has_input(
            connection.fileno()
        ):
            # Something to read on an idle connection, or a transaction left open: let
            # Django's round trip decide.
            return super().is_usable()
        return True


def _prepared_statements() -> bool:
    return getattr(settings, "IDP_DB_PREPARED_STATEMENTS", True)
