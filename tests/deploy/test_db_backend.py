"""Our PostgreSQL backend (idp/db/postgresql): the health check at the start of a request costs
no round trip on a healthy persistent connection, and a connection the server dropped between
requests is still replaced before the request's first query, so no error reaches the caller.

The tests walk Django's own path: `request_started` runs `close_old_connections()`, which marks
the persistent connection for a health check (`health_check_done = False`); the request's first
cursor then runs `close_if_health_check_failed()`, which calls `is_usable()` and reconnects when
it says no. A second, separate session (`dba`) plays the operator: it reads `pg_stat_activity`
(what our backend process last ran) and calls `pg_terminate_backend()`.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from datetime import timedelta
from http import HTTPStatus

import psycopg
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_started
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from idp import health
from idp.db.postgresql.base import DatabaseWrapper
from oauth_clients.models import AccessToken
from tests.oidc.conftest import make_client

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="tests the PostgreSQL backend; they run in the suite's PostgreSQL phase "
        "(DATABASE_URL=postgres://...)",
    ),
    # The persistent connection is used between "requests", outside any test transaction.
    pytest.mark.django_db(transaction=True),
]

ACCESS_TOKEN = "db-backend-test-access-token"


@pytest.fixture
def dba() -> Iterator[psycopg.Connection]:
    """A separate session on the same server, as an operator's psql would be."""
    settings = connection.settings_dict
    params = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "host": settings["HOST"],
        "port": settings["PORT"],
    }
    with psycopg.connect(
        **{key: value for key, value in params.items() if value}, autocommit=True
    ) as conn:
        yield conn


@pytest.fixture
def first_request() -> Iterator[int]:
    """A first request has opened the persistent connection; yields its backend's pid."""
    wrapper = connections[DEFAULT_DB_ALIAS]
    assert isinstance(wrapper, DatabaseWrapper), "settings did not pick idp.db.postgresql"
    # A new connection: one the process opened earlier may reach CONN_MAX_AGE during the test,
    # and the next request would then open another (a new backend, the test's pid gone).
    wrapper.close()
    User.objects.exists()
    assert connection.health_check_enabled, "settings must keep conn_health_checks=True"
    assert connection.settings_dict["CONN_MAX_AGE"] != 0, "the connection must persist"
    yield backend_pid()
    # Whatever the test left behind, the next user of the connection (pytest-django's flush)
    # starts as a request does.
    begin_request()


@pytest.fixture(autouse=True)
def _fresh_migration_answer():
    health.reset_migration_check()
    yield
    health.reset_migration_check()


def backend_pid() -> int:
    return connection.connection.info.backend_pid


def begin_request() -> None:
    """What Django's WSGI handler does when a request comes in."""
    request_started.send(sender=WSGIHandler, environ={})


def last_activity(dba: psycopg.Connection, pid: int) -> tuple:
    """What the server saw last from backend `pid`: statement text and when it started."""
    return dba.execute(
        "SELECT query, query_start FROM pg_stat_activity WHERE pid = %s", [pid]
    ).fetchone()


def terminate(dba: psycopg.Connection, pid: int) -> None:
    """Ends backend `pid` as an operator or a failover would; waits until it has exited
    (the two-argument form is PostgreSQL 14+)."""
    (ended,) = dba.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
    assert ended, f"backend {pid} did not exit within 5 s"


def test_a_reused_healthy_connection_is_checked_without_a_query(dba, first_request):
    before = last_activity(dba, first_request)
    seen_at_first_query: list[tuple] = []

    def observe(execute, sql, params, many, context):
        # Runs after Django's health check, just before the request's first statement is sent.
        if not seen_at_first_query:
            seen_at_first_query.append(last_activity(dba, first_request))
        return execute(sql, params, many, context)

    begin_request()
    assert connection.health_check_done is False
    with connection.execute_wrapper(observe):
        assert User.objects.exists() is False

    assert connection.health_check_done is True
    assert seen_at_first_query == [before], "the health check sent a statement"
    assert backend_pid() == first_request
    assert connection.is_usable() is True


def test_something_to_read_on_an_idle_connection_falls_back_to_select_1(dba, first_request):
    # A notification is something harmless the server sends unprompted: the socket is
    # readable, so Django's round trip decides, and the connection is kept.
    with connection.cursor() as cursor:
        cursor.execute("LISTEN idp_db_backend_test")
    try:
        dba.execute("NOTIFY idp_db_backend_test")
        # Delivery is asynchronous: wait (bounded) until the notification is on our socket.
        readable, _, _ = select.select([connection.connection.fileno()], [], [], 5)
        assert readable, "the notification did not arrive within 5 s"
        assert connection.is_usable() is True
        assert last_activity(dba, first_request)[0] == "SELECT 1"
        assert backend_pid() == first_request
    finally:
        with connection.cursor() as cursor:
            cursor.execute("UNLISTEN *")


def test_a_terminated_backend_is_not_usable(dba, first_request):
    terminate(dba, first_request)
    assert connection.is_usable() is False


def test_a_terminated_backend_is_replaced_before_the_requests_first_query(dba, first_request):
    terminate(dba, first_request)

    begin_request()
    assert User.objects.count() == 0  # no error: Django reconnected before the query

    assert backend_pid() != first_request
    assert connection.is_usable() is True


def test_readyz_answers_ready_after_the_backend_was_terminated(dba, first_request):
    terminate(dba, first_request)

    # The test client leaves close_old_connections out of its request_started (to keep tests'
    # connections); a server runs it, so the request begins as it would behind gunicorn.
    begin_request()
    response = HttpClient().get("/readyz")

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["checks"]["database"] == "ok"
    assert backend_pid() != first_request


def test_userinfo_answers_after_the_backend_was_terminated(dba, first_request, user):
    app = make_client(
        name="Wiki",
        client_id="wiki",
        redirect_uris="https://wiki.example.com/cb",
        allowed_scopes="openid",
    )
    AccessToken.objects.create(
        user=user,
        application=app,
        token=ACCESS_TOKEN,
        scope="openid",
        expires=timezone.now() + timedelta(minutes=5),
    )
    terminate(dba, first_request)

    begin_request()
    response = HttpClient().get(
        reverse("oauth2_provider:user-info"),
        HTTP_AUTHORIZATION=f"Bearer {ACCESS_TOKEN}",
    )

    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json() == {"sub": str(user.pk)}
    assert backend_pid() != first_request
