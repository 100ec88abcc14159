"""Keys of the shared cache (Redis) carry the identity of the database they were read from.

A registered client, a rate-limit count or a session stored in Redis describes rows of one
database. When the database is re-created (a restore, a re-seed) while Redis keeps its data,
the new database must not meet the old entries: a client the new database does not hold, or
holds with another secret, would still be served from the cache for up to
IDP_CLIENT_CACHE_SECONDS. Every key therefore names `Installation` (idp/models.py), read once
per process; a re-created database has a new one, and its processes start anew.
"""

from __future__ import annotations

import threading

from django.db import DatabaseError, transaction

# Before the first migration there is no row to read: such keys share this name, and the
# identity is looked up again next time.
UNMIGRATED = "unmigrated"

_lock = threading.Lock()
_identity: str | None = None


def database_identity() -> str:
    """The `Installation` id of the default database, read once per process."""
    global _identity
    if _identity is not None:
        return _identity
    from idp.models import Installation

    with _lock:
        if _identity is None:
            try:
                # A savepoint: a missing table must not break a transaction in progress.
                with transaction.atomic():
                    found = Installation.objects.values_list("id", flat=True).first()
            except DatabaseError:
                found = None
            if found is None:
                return UNMIGRATED
            _identity = found.hex
    return _identity


def forget_database_identity() -> None:
    """For a process that now talks to another database (the tests' re-created one)."""
    global _identity
    _identity = None


def make_key(key: str, key_prefix: str, version: int) -> str:
    """Django's KEY_FUNCTION: its default key with the database's identity after the prefix."""
    return f"{key_prefix}:{database_identity()}:{version}:{key}"
