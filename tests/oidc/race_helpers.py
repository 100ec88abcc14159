"""Two token requests truly concurrent on PostgreSQL: the one-statement writes' race tests.

The refresh rotation and the code exchange (oauth_clients/oidc/store.py) hold no lock between
validation and their one conditional statement; they rely on PostgreSQL's READ COMMITTED rule
that an UPDATE waiting on a row another transaction changed re-checks its WHERE clause once
that transaction commits. `race` drives two database connections through exactly that
interleaving.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction
from oauthlib.common import Request

ON_POSTGRESQL = [
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's one-statement grant writes"
    ),
    pytest.mark.django_db(transaction=True),
]


def token_request(client, grant_type: str) -> Request:
    """An oauthlib request as the token endpoint has it once `client` is authenticated."""
    request = Request("https://idp.example/o/token/")
    request.client = client
    request.client_id = client.client_id
    request.grant_type = grant_type
    return request


def token(n: int) -> dict:
    """The token response oauthlib would have built (values named by `n`)."""
    return {"access_token": f"a{n}", "refresh_token": f"r{n}", "scope": "openid", "expires_in": 60}


def race(
    winner: Callable[[], None],
    loser: Callable[[], None],
    while_waiting: Callable[[], None] = lambda: None,
) -> None:
    """`winner` writes inside a transaction left open while `loser` runs on a connection of its
    own until it waits for the winner's row lock; `while_waiting` runs then, inside the winner's
    transaction; then the winner commits and the loser ends. `loser` records its own outcome
    (exceptions in a thread are not raised here)."""
    with transaction.atomic():
        winner()  # its rows are now locked until commit

        def run_loser() -> None:
            try:
                loser()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run_loser)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _waiting_on_a_lock():
            time.sleep(0.02)
        assert _waiting_on_a_lock(), "the second request should wait for the first"
        while_waiting()
    thread.join(10)
    assert not thread.is_alive()


def _waiting_on_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Statistics views are a snapshot per transaction; this runs inside the winner's.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0
