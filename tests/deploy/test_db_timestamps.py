"""Our PostgreSQL backend reads timestamps with psycopg's own (C) loader where that gives exactly
what Django's loader gives (idp/db/postgresql/base.py, `_TimestamptzLoader`), and Django's
everywhere else."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.utils import timezone

from accounts.models import User
from idp.db.postgresql import base

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="tests the PostgreSQL backend; they run in the suite's PostgreSQL phase "
        "(DATABASE_URL=postgres://...)",
    ),
    pytest.mark.django_db,
]

TIMESTAMPTZ = psycopg.adapters.types["timestamptz"].oid
# Edges of the range and of the text format: no fraction, six digits, year 1 and 9999, NULL.
VALUES_SQL = """
    SELECT v FROM (VALUES
        ('2026-11-29 08:00:00+00'::timestamptz),
        ('2026-03-29 01:59:59.999999+00'),
        ('2024-02-29 23:00:00.5+00'),
        ('0001-01-01 00:00:00+00'),
        ('9999-12-31 23:59:59.999999+00'),
        (NULL)
    ) AS t(v)
"""


def read(*, django_loader: bool, sql: str = VALUES_SQL) -> list[dt.datetime | None]:
    with connection.cursor() as cursor:
        if django_loader:
            register_tzloader(connection.timezone, cursor.cursor)  # Django's, on this cursor
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


def loader_in_use() -> type[base._TimestamptzLoader]:
    with connection.cursor() as cursor:
        return cursor.cursor.adapters.get_loader(TIMESTAMPTZ, psycopg.pq.Format.TEXT)


def test_timestamps_come_back_as_djangos_loader_gives_them_from_psycopgs_loader():
    ours, djangos = read(django_loader=False), read(django_loader=True)
    assert ours == djangos
    assert ours[0] == dt.datetime(2026, 11, 29, 8, tzinfo=dt.UTC)
    assert ours[-1] is None
    # The same tzinfo object as Django stamps, not merely an equal offset.
    assert all(value.tzinfo is connection.timezone for value in ours if value is not None)
    # And it is psycopg's loader doing it (C when psycopg[binary] is installed).
    loader_class = loader_in_use()
    assert issubclass(loader_class, base._TimestamptzLoader)
    with connection.cursor() as cursor:
        loader = loader_class(TIMESTAMPTZ, cursor.cursor)
    assert type(loader.load.__self__) is base._PSYCOPG_TIMESTAMPTZ_LOADER
    assert loader.load(b"2026-11-29 08:00:00.25+00") == dt.datetime(
        2026, 11, 29, 8, 0, 0, 250000, tzinfo=dt.UTC
    )


def test_model_timestamps_round_trip():
    user = User.objects.create_user("tz", "tz@example.com", "pw")
    joined = timezone.now().replace(microsecond=123456)
    User.objects.filter(pk=user.pk).update(date_joined=joined)
    assert User.objects.get(pk=user.pk).date_joined == joined


def test_a_session_in_another_time_zone_gets_djangos_loader_and_its_answer():
    assert read(django_loader=False)[0].tzinfo is dt.UTC  # the fast path first
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'Europe/Paris'")
    try:
        loader_class = loader_in_use()
        with connection.cursor() as cursor:
            loader = loader_class(TIMESTAMPTZ, cursor.cursor)
        # Not psycopg's: its answer would carry Paris's tzinfo, Django's carries UTC.
        assert getattr(loader.load, "__self__", None) is loader
        # Without year 9999's last second: in Paris it is in year 10000, which neither loads.
        in_range = VALUES_SQL + " WHERE v IS NULL OR v < '9999-01-01'"
        answer = read(django_loader=False, sql=in_range)
        assert answer == read(django_loader=True, sql=in_range)
        assert answer[0].tzinfo is dt.UTC
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
