"""Prepared statements for the IdP's own hot SQL (idp/db/postgresql: `prepared_cursor`).

The prepared lookups (idp/db/prepared.py) and the refresh rotation (oauth_clients/oidc/store.py) are
parsed and planned once per connection; Django's own queries keep client-side binding and are
never prepared; `IDP_DB_PREPARED_STATEMENTS=False` turns it off. Read from the server's own
`pg_prepared_statements` for the connection the requests used.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.db import connection

from accounts.models import User

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL's prepared statements; runs in the suite's PostgreSQL phase",
    ),
    # A fresh connection per test (closed below), outside any test transaction.
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(autouse=True)
def _fresh_connection():
    connection.close()
    yield
    connection.close()


def prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def userinfo(client, token: str):
    return client.get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_token_lookup_is_prepared_once_per_connection(client, web_client, issue_tokens):
    token = issue_tokens(web_client)["access_token"]
    # The code exchange's one statement (oauth_clients/oidc/store.py) is prepared too.
    assert any(sql.startswith("WITH consumed AS") for sql in prepared())
    assert userinfo(client, token).status_code == HTTPStatus.OK
    lookups = [s for s in prepared() if s.startswith("SELECT") and "_accesstoken" in s]
    assert len(lookups) == 1, prepared()
    for _ in range(3):
        assert userinfo(client, token).status_code == HTTPStatus.OK
    assert [s for s in prepared() if s.startswith("SELECT") and "_accesstoken" in s] == lookups


def test_refresh_rotation_is_prepared(client, web_client, issue_tokens):
    from tests.oidc.conftest import basic_auth, post_form

    refresh_token = issue_tokens(web_client)["refresh_token"]
    for _ in range(2):
        response = post_form(
            client,
            "/o/token/",
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            HTTP_AUTHORIZATION=basic_auth(web_client.client_id, web_client.test_secret),
        )
        assert response.status_code == HTTPStatus.OK, response.content
        refresh_token = response.json()["refresh_token"]
    rotations = [sql for sql in prepared() if sql.startswith("WITH rotated AS")]
    assert len(rotations) == 1


def test_django_queries_are_not_prepared(db):
    for _ in range(10):  # more than psycopg's default threshold of 5
        User.objects.filter(username="nobody").exists()
    assert not [sql for sql in prepared() if '"accounts_user"' in sql]


def test_switch_off_prepares_nothing(client, web_client, issue_tokens, settings):
    settings.IDP_DB_PREPARED_STATEMENTS = False
    token = issue_tokens(web_client)["access_token"]
    for _ in range(3):
        assert userinfo(client, token).status_code == HTTPStatus.OK
    assert prepared() == []
