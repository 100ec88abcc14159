"""Query budgets of the hot endpoints: a regression in any of them fails `make test`.

Counted on the test database (SQLite logs BEGIN/COMMIT as queries too; PostgreSQL runs the same
statements). The client-credentials, refresh and userinfo pins live next to their protocol tests
(test_token_client_credentials.py, test_token_refresh.py, test_userinfo.py); the cached client
(Redis) takes one more SELECT off each of these, proven in test_client_cache.py. Every grant
writes in one transaction: one commit, so one WAL flush, per grant.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from oauth_clients.models import Client
from tests.oidc.conftest import basic_auth, post_form

WRITES = {"INSERT", "UPDATE", "DELETE"}


def statements(captured) -> list[str]:
    return [q["sql"].split()[0].upper() for q in captured]


def writes(captured) -> list[str]:
    return [s for s in statements(captured) if s in WRITES]


@pytest.fixture
def resource_server(db) -> Client:
    client = Client.objects.create(
        client_id="api",
        client_secret="api-secret-" + "a" * 30,
        client_type=Client.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
        is_resource_server=True,
    )
    client.test_secret = "api-secret-" + "a" * 30
    return client


def test_code_exchange_queries(
    web_client, run_code_flow, exchange_code, django_assert_max_num_queries
):
    flow = run_code_flow(web_client)
    exchange_code(web_client, run_code_flow(web_client))  # last_used_at stamped: steady state
    one_statement = connection.vendor == "postgresql"
    # The code row, read once with its client, its user and whether the user's address is
    # verified, then the writes: one statement on PostgreSQL; elsewhere one transaction
    # (oauth_clients/oidc/store.py). Nothing is locked.
    with django_assert_max_num_queries(2 if one_statement else 9) as captured:
        response = exchange_code(web_client, flow)
    assert response.status_code == HTTPStatus.OK, response.content
    assert not any(q["sql"].startswith("SELECT 1 AS") for q in captured)  # no EXISTS of its own
    # The client came with the code: no statement reads it alone (nor the client cache).
    assert not any(q["sql"].startswith('SELECT "oauth_clients_client"') for q in captured), [
        q["sql"][:80] for q in captured
    ]
    assert not any("FOR UPDATE" in q["sql"] for q in captured)
    kinds = statements(captured)
    if one_statement:
        # Every write in one statement (oauth_clients/oidc/store.py): the code consumed, the
        # ID, access and refresh tokens, the audit row; no transaction.
        assert [k for k in kinds if k in WRITES | {"WITH"}] == ["WITH"]
        (exchange,) = [q["sql"] for q in captured if q["sql"].startswith("WITH")]
        assert exchange.count("INSERT INTO") == 4
        assert exchange.count("UPDATE ") == 1
        assert not any(k in {"BEGIN", "SAVEPOINT", "COMMIT"} for k in kinds)
        assert not any("FOR UPDATE" in q["sql"] for q in captured)
        return
    # ID token, access token, refresh token, the code marked consumed, the audit row.
    assert sorted(writes(captured)) == ["INSERT", "INSERT", "INSERT", "INSERT", "UPDATE"]
    assert kinds.count("COMMIT") <= 1


def test_introspection_queries(
    client, web_client, issue_tokens, resource_server, django_assert_max_num_queries
):
    token = issue_tokens(web_client)["access_token"]
    url = reverse("oauth2_provider:introspect")
    auth = basic_auth(resource_server.client_id, resource_server.test_secret)
    post_form(client, url, {"token": token}, HTTP_AUTHORIZATION=auth)  # stamps last_used_at
    # The caller (read from the database, not the client cache: a disabled caller counts at
    # once), then the token with its user and client.
    with django_assert_max_num_queries(2) as captured:
        response = post_form(client, url, {"token": token}, HTTP_AUTHORIZATION=auth)
    assert response.json()["active"] is True
    assert writes(captured) == []


def test_refresh_token_introspection_queries(
    client, web_client, issue_tokens, resource_server, django_assert_max_num_queries
):
    token = issue_tokens(web_client)["refresh_token"]
    url = reverse("oauth2_provider:introspect")
    auth = basic_auth(resource_server.client_id, resource_server.test_secret)
    hinted = {"token": token, "token_type_hint": "refresh_token"}
    post_form(client, url, hinted, HTTP_AUTHORIZATION=auth)  # stamps last_used_at
    # With the hint the caller and the refresh token; without it, the access-token lookup
    # misses first.
    with django_assert_max_num_queries(2):
        assert post_form(client, url, hinted, HTTP_AUTHORIZATION=auth).json()["active"] is True
    with django_assert_max_num_queries(3):
        response = post_form(client, url, {"token": token}, HTTP_AUTHORIZATION=auth)
    assert response.json()["active"] is True


def test_discovery_and_jwks_are_answered_from_the_cache(client, db, django_assert_num_queries):
    cache.clear()
    for url in ("/.well-known/openid-configuration", "/.well-known/jwks.json"):
        client.get(url)
        with django_assert_num_queries(0):
            assert client.get(url).status_code == HTTPStatus.OK


def test_revocation_queries(web_client, issue_tokens, revoke, django_assert_max_num_queries):
    token = issue_tokens(web_client)["access_token"]
    # DOT's revoke_access_token (Django's collector) and the audit row; not a hot path, pinned
    # so it does not grow unnoticed.
    with django_assert_max_num_queries(13):
        response = revoke(web_client, token)
    assert response.status_code == HTTPStatus.OK
