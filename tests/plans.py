"""PostgreSQL's generic plan of a prepared lookup (idp.db.prepared), for plan tests.

The hot lookups are prepared statements: after a few executions PostgreSQL runs them with a
generic plan, made without the parameter's value. These helpers EXPLAIN that plan for one
value and walk its nodes, so a test can say which tables a lookup reads and how.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.db import connection

from idp.db.prepared import PreparedLookup


def generic_plan(lookup: PreparedLookup, value: Any) -> dict[str, Any]:
    """The root node of the generic plan of `lookup` run with `value` (EXPLAIN, FORMAT JSON)."""
    compiled = lookup.compiled(connection.alias)
    params = list(compiled.params)
    params[compiled.position] = value
    numbered = compiled.sql.replace("%s", "{}").format(*(f"${i + 1}" for i in range(len(params))))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE idp_plan_probe AS {numbered}")
        try:
            placeholders = ", ".join(["%s"] * len(params))
            cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE idp_plan_probe({placeholders})", params)
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("DEALLOCATE idp_plan_probe")
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def subplans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The correlated subqueries' plans (an annotation each)."""
    return [node for node in nodes(plan) if node.get("Parent Relationship") == "SubPlan"]


def per_row_probe_of(subplan: dict[str, Any], table: str) -> bool:
    """Whether `subplan` reads `table` alone, without building a hash (not a hashed subplan)."""
    found = list(nodes(subplan))
    return (
        {node.get("Relation Name") for node in found} - {None} == {table}
        and not any("Hash" in node["Node Type"] for node in found)
        and "hashed" not in subplan.get("Subplan Name", "")
    )
