"""Probes: /healthz (the process answers; no I/O) and /readyz (database, cache, migrations).

Both are cheap enough for a probe every few seconds: /readyz runs `SELECT 1` under a 2-second
statement timeout and one cache round trip; whether all migrations are applied is checked once
per process and remembered after the first success (new migrations only arrive with new code,
i.e. a new process). The answers name the failing check but never an error text (hostnames,
ports); the error goes to the log.
"""

from __future__ import annotations

import logging
import secrets
import threading

from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("idp.health")

_migrations_ok = False
_migrations_lock = threading.Lock()


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: answering at all is the proof. Never touches the database or the cache."""
    return _no_store(JsonResponse({"status": "ok"}))


def check_database() -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    with transaction.atomic(using=DEFAULT_DB_ALIAS), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A stuck server must not hold the probe past its own timeout.
            cursor.execute("SET LOCAL statement_timeout = 2000")
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    key = "idp:readyz"
    value = secrets.token_hex(8)
    cache.set(key, value, timeout=30)
    if cache.get(key) != value:
        raise RuntimeError("cache did not return what was just stored")


def check_migrations() -> None:
    global _migrations_ok
    if _migrations_ok:
        return
    with _migrations_lock:
        if _migrations_ok:
            return
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            raise RuntimeError(f"{len(plan)} migrations not applied")
        _migrations_ok = True


def reset_migration_check() -> None:
    """Forget the remembered answer (tests; a process that wants to re-check)."""
    global _migrations_ok
    _migrations_ok = False


CHECKS = (
    ("database", check_database),
    ("cache", check_cache),
    ("migrations", check_migrations),
)


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: 200 when this instance can serve sign-ins, else 503 naming the failed checks."""
    results: dict[str, str] = {}
    for name, check in CHECKS:
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "skipped"
            continue
        try:
            check()
        except Exception as exc:
            # Any failure means "not ready"; the probe must answer, not crash the worker.
            logger.warning(
                "readiness check %s failed: %s: %s", name, type(exc).__name__, str(exc)[:300]
            )
            results[name] = "failed"
        else:
            results[name] = "ok"
    ready = all(value == "ok" for value in results.values())
    body = {"status": "ok" if ready else "unavailable", "checks": results}
    return _no_store(JsonResponse(body, status=200 if ready else 503))
