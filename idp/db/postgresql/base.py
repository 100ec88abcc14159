"""Django's PostgreSQL backend, with a per-request health check that costs no round trip.

Why: settings keep `CONN_HEALTH_CHECKS` on, so at the first query of every request Django calls
`is_usable()` on the persistent connection (`close_if_health_check_failed`), and Django's
PostgreSQL backend answers it with `SELECT 1`: a full round trip before the request's own first
query. A client-credentials grant needs one INSERT, so the check doubled its round trips; under
load (py-spy, gunicorn 2 workers, PostgreSQL) about 20% of the token endpoints' samples were in
`close_if_health_check_failed` (bench/profiles/after/client_credentials.txt: 22.9%).

How: between requests a healthy idle connection has nothing to read. The server only writes to
it unprompted when it is going away: the FATAL message of `pg_terminate_backend()` or of a
shutdown, then end of file; a closed socket (RST, peer gone) reads as end of file or an error.
So a zero-timeout poll of the socket tells a dropped connection from a live one without sending
anything. When the socket is readable, or the connection is not idle, Django's own check runs
(`SELECT 1`), which fails on a dying connection, and Django closes it and reconnects for the
query: the request never sees the error.

Limit: a network path that vanished silently (no RST, no FIN) looks idle, so it is found only
when the request's first query fails, as with Django without health checks. Django's `SELECT 1`
would not do better there: it would wait on the same dead path.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


def _has_input(fileno: int) -> bool:
    """Whether the socket has something to read (data, end of file or an error), without waiting."""
    if hasattr(select, "poll"):
        # poll, not select: select() cannot watch descriptors above FD_SETSIZE (1024).
        poller = select.poll()
        poller.register(fileno, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, errored = select.select([fileno], [], [fileno], 0)
    return bool(readable or errored)


class DatabaseWrapper(base.DatabaseWrapper):
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
