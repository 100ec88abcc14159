"""One-row ORM lookups compiled once per process and database, then run with a new value.

Why this exists: on the hottest endpoints (userinfo, introspection, the refresh grant) the
ORM spent more CPU turning the same queryset into SQL again — `select_related` joins, an
EXISTS annotation, row locks — than the database spent answering it: ~60 % of a userinfo
request's CPU in `QuerySet.first` → `SQLCompiler.as_sql` (cProfile). Django
has no public "prepared queryset", so this compiles the queryset once with a marker value,
keeps Django's own compiler (its column map, converters and related-object populators) and
per call runs the same SQL with the marker's parameter replaced — still a bound parameter,
never text pasted into SQL. Rows become model instances exactly as `ModelIterable` does
(Django 5.2), including `select_related` objects and annotations.

Limits, on purpose: one marker parameter, one row (the queryset is sliced to one), no
`prefetch_related`, no deferred fields. A lookup with `select_for_update()` refuses to run
outside a transaction, as Django does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections, router
from django.db.models import Model, QuerySet, Subquery
from django.db.models.lookups import IsNull
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

MARKER = "\x1fidp-prepared-lookup-marker\x1f"


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[Any, ...]
    position: int
    compiler: Any
    init_list: list[str]
    fields_start: int
    fields_end: int
    populators: list[Any]
    annotations: dict[str, int]
    for_update: bool
    converters: dict[int, Any]


class PreparedLookup:
    """`build(value)` → a queryset of at most one row; `lookup.first(value)` runs it.

    `build` is called once per database alias, with `MARKER` as the value.
    """

    def __init__(self, build: Callable[[Any], QuerySet]) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def _compile(self, using: str) -> _Compiled:
        queryset = self._build(MARKER)
        query = queryset.query
        if query.low_mark != 0 or query.high_mark != 1:
            raise ValueError("a prepared lookup is sliced to exactly one row: qs[:1]")
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        positions = [i for i, value in enumerate(params) if value == MARKER]
        if len(positions) != 1:
            raise ValueError("the marker must appear exactly once among the parameters")
        klass_info = compiler.klass_info
        # Django asks every column's field for its converters on each fetch (results_iter):
        # ~4 % of a userinfo request's CPU; the answer never changes for this SQL.
        converters = compiler.get_converters(
            [column[0] for column in compiler.select[: compiler.col_count]]
        )
        select_fields = klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        return _Compiled(
            sql=sql,
            params=tuple(params),
            position=positions[0],
            compiler=compiler,
            init_list=[column[0].target.attname for column in compiler.select[start:end]],
            fields_start=start,
            fields_end=end,
            populators=get_related_populators(klass_info, compiler.select, using),
            annotations=dict(compiler.annotation_col_map or {}),
            for_update=query.select_for_update,
            converters=converters,
        )

    def compiled(self, using: str) -> _Compiled:
        compiled = self._compiled.get(using)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(using)
                if compiled is None:
                    compiled = self._compile(using)
                    self._compiled[using] = compiled
        return compiled

    def first(self, value: Any, model: type[Model]) -> Model | None:
        using = router.db_for_read(model)
        compiled = self.compiled(using)
        connection = connections[using]
        if (
            compiled.for_update
            and connection.get_autocommit()
            and connection.features.supports_transactions
        ):
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        params = list(compiled.params)
        params[compiled.position] = value
        with statement_cursor(connection) as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return _instance(compiled, row, using)


def statement_cursor(connection: Any) -> Any:
    """PostgreSQL (idp/db/postgresql): a statement parsed and planned once per connection."""
    prepared_cursor = getattr(connection, "prepared_cursor", None)
    return prepared_cursor() if prepared_cursor is not None else connection.cursor()


def _instance(compiled: _Compiled, row: Any, using: str) -> Model:
    """The model instance of one row, as `ModelIterable` builds it (Django 5.2)."""
    if compiled.converters:
        (row,) = compiled.compiler.apply_converters([row], compiled.converters)
    obj = compiled.compiler.query.model.from_db(
        using, compiled.init_list, row[compiled.fields_start : compiled.fields_end]
    )
    for populator in compiled.populators:
        populator.populate(row, obj)
    for name, position in compiled.annotations.items():
        setattr(obj, name, row[position])
    return obj


def row_exists(queryset: QuerySet) -> IsNull:
    """EXISTS(`queryset`) for an annotation of a one-row lookup, written as a scalar subquery
    tested for NULL.

    Why: PostgreSQL may plan a correlated EXISTS as a hashed subplan, a scan of every matching
    row of the inner table built on each execution. That is cheap for a query over many outer
    rows and is what a one-row lookup (a token, a sign-in) pays on every request: every
    verified address per refresh grant once there were 200. A scalar
    subquery is never hashed: one probe by the correlated key per outer row.
    """
    return IsNull(Subquery(queryset.values("pk")[:1]), False)
