"""Cursor pagination with signed cursors (Django's `signing`: HMAC with SECRET_KEY).

A page is read by keyset (`WHERE (key) < (last key)`, newest or highest first), never by
offset, so a page costs the same deep in the log and rows written meanwhile neither repeat
nor vanish. The cursor carries the last row's key and the listing it belongs to, signed: a
cursor that was changed, truncated, made up or taken from another listing is refused with a
400 problem (`invalid-cursor`) rather than read as some other position.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, TypeVar

from django.core import signing
from django.db.models import Model, Q, QuerySet

from adminapi.problems import Problem

SALT = "adminapi.cursor"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50

M = TypeVar("M", bound=Model)


def _invalid() -> Problem:
    return Problem(
        HTTPStatus.BAD_REQUEST,
        "The cursor is not one this API issued for this listing: start again without it.",
        code="invalid-cursor",
        title="Invalid cursor",
        errors=[{"field": "cursor", "message": "invalid cursor"}],
    )


def encode(*, listing: str, key: Sequence[Any]) -> str:
    return signing.dumps({"l": listing, "k": list(key)}, salt=SALT, compress=True)


def decode(cursor: str, *, listing: str) -> list[Any]:
    try:
        data = signing.loads(cursor, salt=SALT)
    except (signing.BadSignature, ValueError, UnicodeError):
        raise _invalid() from None
    if (
        not isinstance(data, dict)
        or data.get("l") != listing
        or not isinstance(data.get("k"), list)
    ):
        raise _invalid()
    return data["k"]


def page(
    queryset: QuerySet[M],
    *,
    listing: str,
    fields: Sequence[str],
    cursor: str | None,
    limit: int,
    key_of: Callable[[M], Sequence[Any]],
    parse_key: Callable[[list[Any]], Sequence[Any]] = lambda key: key,
) -> tuple[list[M], str | None]:
    """One page of `queryset` ordered by `fields` descending, and the cursor of the next page
    (None at the end). `key_of` gives a row's key as JSON values, `parse_key` the cursor's
    key back as the fields' values."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            f"limit must be between 1 and {MAX_LIMIT}.",
            code="invalid-request",
            errors=[{"field": "limit", "message": f"between 1 and {MAX_LIMIT}"}],
        )
    queryset = queryset.order_by(*(f"-{field}" for field in fields))
    if cursor:
        raw = decode(cursor, listing=listing)
        if len(raw) != len(fields):
            raise _invalid()
        try:
            values = list(parse_key(raw))
        except (TypeError, ValueError):
            raise _invalid() from None
        # (a, b) < (x, y) as a disjunction the ORM can say on every database.
        after = Q()
        for position, field in enumerate(fields):
            step = Q(**{f"{field}__lt": values[position]})
            for earlier in range(position):
                step &= Q(**{fields[earlier]: values[earlier]})
            after |= step
        queryset = queryset.filter(after)
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode(listing=listing, key=key_of(rows[-1])) if more and rows else None
    return rows, next_cursor
