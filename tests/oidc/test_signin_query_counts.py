"""Query budgets of a browser's password sign-in into an app, request by request.

The five requests of `bench/wrk/signin.lua`: the authorization request (anonymous), the login
page, the login POST, the authorization request again with the session (trusted client: no
consent screen), the code exchange (pinned in test_query_counts.py). As in production, sessions
and registered clients live in the cache (Redis there, the process's memory here), so SQLite and
PostgreSQL count the same statements (inside the test's transaction both write SAVEPOINT and
RELEASE around each atomic block). A regression in any of them fails `make test`.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from allauth.usersessions.models import UserSession
from django.core.cache import cache
from django.test import Client as HttpClient

from oauth_clients.client_cache import invalidate_clients
from tests.oidc.authorize_helpers import AUTHORIZE_URL, authorization_params, redirect_query
from tests.oidc.conftest import WEB_REDIRECT_URI

pytestmark = pytest.mark.django_db

WRITES = {"INSERT", "UPDATE", "DELETE"}


def _outside_subqueries(sql: str) -> str:
    """The statement with every parenthesised part (subqueries among them) left out."""
    depth, kept = 0, []
    for char in sql:
        depth += char == "("
        if depth == 0:
            kept.append(char)
        depth -= char == ")"
    return "".join(kept)


def tables(captured) -> list[str]:
    """The tables the statements read or write, in order (one per statement; a subquery's
    table is not the statement's)."""
    names = []
    for query in captured:
        sql = _outside_subqueries(query["sql"])
        for keyword in (" FROM ", "INSERT INTO ", "UPDATE "):
            if keyword in sql:
                names.append(sql.split(keyword, 1)[1].split()[0].strip('"'))
                break
    return names


def subquery_tables(query) -> set[str]:
    """The tables a statement's subqueries read (`(SELECT ... FROM table ...`)."""
    parts = query["sql"].split("(SELECT ")[1:]
    return {part.split(" FROM ", 1)[1].split()[0].strip('"') for part in parts}


def writes(captured) -> list[str]:
    """The statements that write, by their first word (WITH: data-modifying CTEs)."""
    kinds = [q["sql"].split()[0].upper() for q in captured]
    return [kind for kind in kinds if kind in WRITES | {"WITH"}]


@pytest.fixture(autouse=True)
def _production_caches(settings, django_capture_on_commit_callbacks):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"  # production's (REDIS_URL)
    settings.IDP_CLIENT_CACHE_SECONDS = 300
    # No client cached by an earlier test (its row was rolled back), no rate-limit counts.
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_clients()
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()
    yield
    with django_capture_on_commit_callbacks(execute=True):
        invalidate_clients()


@pytest.fixture
def login_page(client, web_client) -> str:
    """The login page URL the authorization request sends an anonymous browser to."""
    response = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert response.status_code == HTTPStatus.FOUND
    return response["Location"]


def test_anonymous_authorization_request_and_login_page_need_no_query(
    client, web_client, django_assert_num_queries
):
    # The client and the branding come from the cache: warm both first, as every request after
    # the first one finds them.
    client.get(client.get(AUTHORIZE_URL, authorization_params(web_client))["Location"])
    with django_assert_num_queries(0):
        response = client.get(AUTHORIZE_URL, authorization_params(web_client))
    assert response.status_code == HTTPStatus.FOUND
    with django_assert_num_queries(0):
        page = client.get(response["Location"])
    assert page.status_code == HTTPStatus.OK


def test_password_sign_in_by_username_queries(
    client, user, password, login_page, django_assert_max_num_queries
):
    client.get(login_page)
    with django_assert_max_num_queries(5) as captured:
        response = client.post(login_page, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND, response.content[:300]
    assert urlsplit(response["Location"]).path == AUTHORIZE_URL
    read = tables(captured)
    # A sign-in name without "@" is no email address: allauth's lookup by address is skipped
    # (accounts.backends); the user is read once, by username, with the login stages' two
    # checks as subqueries: a verified address and a second factor.
    assert read[0] == "accounts_user"
    assert subquery_tables(captured[0]) == {"account_emailaddress", "mfa_authenticator"}
    assert "account_emailaddress" not in read  # accounts.stages takes the lookup's answer
    assert "mfa_authenticator" not in read  # so does accounts.mfa_policy.MFAAdapter
    # last_login and the audit row (accounts.services.record_login), the record of this browser
    # session (one INSERT, not allauth's get-or-create), then the user's sessions that may have
    # expired (one SELECT).
    assert [q["sql"] for q in captured if 'UPDATE "accounts_user" SET "last_login"' in q["sql"]]
    assert sorted(writes(captured)) == ["INSERT", "INSERT", "UPDATE"]
    assert read.count("usersessions_usersession") == 2


def test_password_sign_in_queries_do_not_grow_with_the_users_other_sessions(
    user, password, web_client, django_assert_max_num_queries
):
    # allauth's receiver read every other session of the user (and its user) at each sign-in;
    # services.record_user_session checks only rows older than SESSION_COOKIE_AGE.
    for _ in range(3):
        other = HttpClient()
        page = other.get(AUTHORIZE_URL, authorization_params(web_client))["Location"]
        other.get(page)
        assert (
            other.post(page, {"login": "alice", "password": password}).status_code
            == HTTPStatus.FOUND
        )
    assert UserSession.objects.filter(user=user).count() == 3
    browser = HttpClient()
    page = browser.get(AUTHORIZE_URL, authorization_params(web_client))["Location"]
    browser.get(page)
    with django_assert_max_num_queries(5):
        response = browser.post(page, {"login": "alice", "password": password})
    assert response.status_code == HTTPStatus.FOUND
    assert UserSession.objects.filter(user=user).count() == 4


def test_password_sign_in_by_email_queries(
    client, user, password, login_page, django_assert_max_num_queries
):
    client.get(login_page)
    with django_assert_max_num_queries(7) as captured:
        response = client.post(login_page, {"login": "alice@example.com", "password": password})
    assert response.status_code == HTTPStatus.FOUND, response.content[:300]
    read = tables(captured)
    # The verified address found the user (joined): no lookup by username.
    # Only the last_login UPDATE.
    assert read.count("accounts_user") == 1
    # allauth's lookup by address carries no answers: its stages read that address (verified?)
    # and the second factors themselves.
    assert read.count("account_emailaddress") == 2
    assert read.count("mfa_authenticator") == 1


def test_authorization_request_with_the_new_session_queries(
    client, user, password, web_client, django_assert_max_num_queries
):
    # accounts.middleware.SessionActivityMiddleware (allauth's tracking, throttled): the sign-in
    # has just recorded the session, so this request only reads the user and writes the Grant
    # (allauth's own middleware added SAVEPOINT, SELECT, SELECT, UPDATE, RELEASE).
    login_page = client.get(AUTHORIZE_URL, authorization_params(web_client))["Location"]
    client.get(login_page)
    back = client.post(login_page, {"login": "alice", "password": password})["Location"]
    with django_assert_max_num_queries(2) as captured:
        response = client.get(back)
    assert redirect_query(response, WEB_REDIRECT_URI)["code"]
    assert tables(captured) == ["accounts_user", "oauth_clients_grant"]
