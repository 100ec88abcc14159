"""SCIM filters (RFC 7644 §3.4.2.2) as ORM conditions.

The filter is parsed and checked against the resource's schema by scim2-models (`ScimFilter`,
its own grammar: an unknown attribute or a malformed expression is `invalidFilter` before this
runs); this module walks the parsed tree with scim2-models' `FilterVisitor` and answers each node
with a `Q` on the columns the attribute is stored in (`scim.resources`). Why scim2-models' parser
and not scim2-filter-parser: it is the same project's, bound to the same models (attribute
names and value types resolved from the schema, case-insensitively), and gives a typed tree
to transpile instead of SQL text to splice. What it cannot know is which attributes this
directory stores and can search: an attribute the schema has but this mapping lacks (say
`nickName`) is refused with `invalidFilter`, never silently matched.

String comparisons follow the attribute's `caseExact` (RFC 7643 §2.2): `userName` and the other
strings case-insensitively (`eq` on `userName` is `UPPER(username) = UPPER(%s)`, the expression
index accounts.models.User has for sign-in), `externalId` and `id` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q
from scim2_models import InvalidFilterException
from scim2_models.path import (
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
# A longer filter is refused before it is parsed (a 10 kB expression costs the parser time
# for nothing any client needs).
MAX_FILTER_LENGTH = 2048


@dataclass(frozen=True)
class Column:
    """Where an attribute is stored, and how its values compare."""

    field: str
    kind: str = "str"  # "str", "bool", "datetime", "id"
    case_exact: bool = False
    many: bool = False  # through a multi-valued relation: the rows need DISTINCT


USER_COLUMNS: dict[str, Column] = {
    "id": Column("pk", "id"),
    "username": Column("username"),
    "externalid": Column("scim__external_id", case_exact=True),
    "name.givenname": Column("first_name"),
    "name.familyname": Column("last_name"),
    "emails": Column("email"),
    "emails.value": Column("email"),
    "emails.type": Column("scim__email_type"),
    "active": Column("is_active", "bool"),
    "title": Column("job_title"),
    "meta.created": Column("date_joined", "datetime"),
    "meta.lastmodified": Column("updated_at", "datetime"),
    f"{ENTERPRISE}:employeenumber": Column("employee_id", case_exact=True),
    f"{ENTERPRISE}:department": Column("department"),
    f"{ENTERPRISE}:manager": Column("scim__manager_ref", case_exact=True),
    f"{ENTERPRISE}:manager.value": Column("scim__manager_ref", case_exact=True),
    "groups": Column("groups__pk", "id", many=True),
    "groups.value": Column("groups__pk", "id", many=True),
}
# The enterprise attributes may be named without their schema's URN (RFC 7644 §3.10).
USER_COLUMNS.update(
    {
        key.removeprefix(ENTERPRISE + ":"): column
        for key, column in list(USER_COLUMNS.items())
        if key.startswith(ENTERPRISE + ":")
    }
)

GROUP_COLUMNS: dict[str, Column] = {
    "id": Column("pk", "id"),
    "displayname": Column("name"),
    "externalid": Column("scim__external_id", case_exact=True),
    "members": Column("user__pk", "id", many=True),
    "members.value": Column("user__pk", "id", many=True),
    "meta.created": Column("scim__created_at", "datetime"),
    "meta.lastmodified": Column("scim__updated_at", "datetime"),
}

# Lookups per operator: case-insensitive strings, and the rest.
_INSENSITIVE = {"eq": "iexact", "co": "icontains", "sw": "istartswith", "ew": "iendswith"}
_SENSITIVE = {"eq": "exact", "co": "contains", "sw": "startswith", "ew": "endswith"}
_ORDER = {"gt": "gt", "ge": "gte", "lt": "lt", "le": "lte"}
_NOTHING = Q(pk__in=[])


def _key(attr_path: Any, prefix: str = "") -> str:
    uri = f"{attr_path.uri}:" if attr_path.uri else ""
    name = f"{prefix}{attr_path.attr}" if not prefix else f"{prefix}.{attr_path.attr}"
    sub = f".{attr_path.sub_attr}" if attr_path.sub_attr else ""
    return f"{uri}{name}{sub}".lower()


class FilterToQ(FilterVisitor[Q]):
    """One resource type's filter as a `Q` on its model."""

    def __init__(self, columns: dict[str, Column], *, prefix: str = "") -> None:
        self.columns = columns
        self.prefix = prefix
        self.joins_many = False

    def column(self, attr_path: Any) -> Column:
        key = _key(attr_path, self.prefix)
        column = self.columns.get(key)
        if column is None:
            raise InvalidFilterException(detail=f"{attr_path} cannot be searched here")
        self.joins_many = self.joins_many or column.many
        return column

    def visit_logical_expr(self, node: LogicalExpr) -> Q:
        terms = [self.visit(term) for term in node.terms]
        combined = terms[0]
        for term in terms[1:]:
            combined = combined & term if node.op == LogicalOperator.and_ else combined | term
        return combined

    def visit_not(self, node: Not) -> Q:
        return ~self.visit(node.expr)

    def visit_present(self, node: Present) -> Q:
        column = self.column(node.attr_path)
        present = Q(**{f"{column.field}__isnull": False})
        if column.kind == "str":
            present &= ~Q(**{column.field: ""})
        return present

    def visit_value_path(self, node: ValuePath) -> Q:
        # `emails[value co "@example.com"]`, `members[value eq "42"]`: the inner filter on the
        # sub-attributes of the one attribute this directory stores for each.
        inner = FilterToQ(self.columns, prefix=_key(node.attr_path))
        condition = inner.visit(node.val_filter)
        self.joins_many = self.joins_many or inner.joins_many
        return condition

    def visit_comparison(self, node: Comparison) -> Q:
        column = self.column(node.attr_path)
        op = node.op.value
        value = self.value(column, node.value, op)
        if value is None:
            return _NOTHING if op != "ne" else Q()
        if op == "ne":
            lookup = "exact" if column.case_exact or column.kind != "str" else "iexact"
            return ~Q(**{f"{column.field}__{lookup}": value})
        if op in _ORDER:
            if column.kind == "bool":
                raise InvalidFilterException(detail=f"{node.attr_path} cannot be ordered")
            return Q(**{f"{column.field}__{_ORDER[op]}": value})
        if column.kind != "str":
            if op != "eq":
                raise InvalidFilterException(detail=f"{op} does not apply to {node.attr_path}")
            return Q(**{column.field: value})
        lookups = _SENSITIVE if column.case_exact else _INSENSITIVE
        return Q(**{f"{column.field}__{lookups[op]}": value})

    @staticmethod
    def value(column: Column, raw: Any, op: str) -> Any:
        """The filter's value as the column holds it; None for one it can never equal (an id
        that is no number)."""
        if column.kind == "bool":
            if not isinstance(raw, bool):
                raise InvalidFilterException(detail="a boolean is compared with true or false")
            return raw
        if column.kind == "datetime":
            try:
                return datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                raise InvalidFilterException(detail=f"{raw!r} is not a date and time") from None
        if column.kind == "id":
            text = str(raw)
            return int(text) if text.isdigit() and len(text) < 19 else None
        if raw is None or isinstance(raw, bool | dict | list):
            raise InvalidFilterException(detail=f"{op} needs a string here")
        return str(raw)


def filter_q(columns: dict[str, Column], tree: Any) -> tuple[Q, bool]:
    """The filter's condition, and whether it joins a multi-valued relation (DISTINCT)."""
    visitor = FilterToQ(columns)
    condition = visitor.visit(tree)
    return condition, visitor.joins_many
