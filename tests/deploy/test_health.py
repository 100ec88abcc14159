"""/healthz and /readyz: cheap, honest, reachable by probes on the pod IP over plain http."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client

from idp import health


@pytest.fixture(autouse=True)
def _fresh_migration_answer():
    health.reset_migration_check()
    yield
    health.reset_migration_check()


def test_healthz_answers_without_any_io(monkeypatch):
    # No django_db mark: any database access would raise. The cache must not be touched either.
    def no_cache(*args, **kwargs):
        raise AssertionError("liveness touched the cache")

    monkeypatch.setattr(cache, "get", no_cache)
    monkeypatch.setattr(cache, "set", no_cache)
    response = Client().get("/healthz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_readyz_is_ready_when_database_cache_and_migrations_are_fine():
    response = Client().get("/readyz")
    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "migrations": "ok"},
    }


@pytest.mark.django_db
def test_readyz_remembers_migrations_after_first_success(
    monkeypatch, django_assert_max_num_queries
):
    assert Client().get("/readyz").status_code == HTTPStatus.OK

    def loader_must_not_run(*args, **kwargs):
        raise AssertionError("migration graph loaded again")

    monkeypatch.setattr(health, "MigrationExecutor", loader_must_not_run)
    # Each later probe costs SELECT 1 (plus its transaction/savepoint statements), nothing more.
    with django_assert_max_num_queries(4) as captured:
        response = Client().get("/readyz")
    assert response.status_code == HTTPStatus.OK
    statements = [query["sql"] for query in captured.captured_queries]
    assert "SELECT 1" in statements
    assert not any("django_migrations" in sql for sql in statements)


@pytest.mark.django_db
def test_readyz_is_unready_when_cache_fails(monkeypatch):
    assert Client().get("/readyz").status_code == HTTPStatus.OK

    def broken_set(*args, **kwargs):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(cache, "set", broken_set)
    response = Client().get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["checks"]["cache"] == "failed"
    # The error text (hosts, ports) stays in the log, not in the answer.
    assert b"redis went away" not in response.content


@pytest.mark.django_db
def test_readyz_is_unready_when_database_fails(monkeypatch):
    assert Client().get("/readyz").status_code == HTTPStatus.OK

    def broken_check():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_for_readyz")

    monkeypatch.setattr(health, "CHECKS", (("database", broken_check), *health.CHECKS[1:]))
    response = Client().get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["checks"] == {
        "database": "failed",
        "cache": "ok",
        "migrations": "skipped",
    }


@pytest.mark.django_db
def test_readyz_is_unready_while_migrations_are_pending(monkeypatch):
    class PendingExecutor:
        def __init__(self, connection):
            self.loader = type("L", (), {"graph": type("G", (), {"leaf_nodes": lambda s: []})()})()

        def migration_plan(self, targets):
            return [("accounts", "9999_future")]

    monkeypatch.setattr(health, "MigrationExecutor", PendingExecutor)
    response = Client().get("/readyz")
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["checks"]["migrations"] == "failed"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_any_host_header_while_pages_still_refuse_it(path, settings):
    settings.ALLOWED_HOSTS = ["idp.example.com"]
    probe = Client(HTTP_HOST="10.42.0.17:8000")
    assert probe.get(path).status_code == HTTPStatus.OK
    # The host check still guards every other URL.
    assert probe.get("/accounts/login/").status_code == HTTPStatus.BAD_REQUEST


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_are_not_redirected_to_https(path, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["testserver"]
    # Pages are redirected to https …
    page = Client().get("/accounts/login/")
    assert page.status_code == HTTPStatus.MOVED_PERMANENTLY
    assert page["Location"].startswith("https://")
    # … probes over plain http are answered.
    assert Client().get(path).status_code == HTTPStatus.OK


def test_redirect_exemptions_cover_the_probe_paths(settings):
    import re

    for path in ("healthz", "readyz", "metrics"):
        assert any(re.search(pattern, path) for pattern in settings.SECURE_REDIRECT_EXEMPT)
    assert not any(re.search(p, "accounts/login/") for p in settings.SECURE_REDIRECT_EXEMPT)
