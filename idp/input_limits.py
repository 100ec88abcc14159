"""Input no database column can take: NUL characters, and integers past 64 bits.

PostgreSQL's text columns cannot hold U+0000: psycopg refuses the statement (DataError), so a
NUL character in a value answers a 500 on PostgreSQL where SQLite stores it; SQLite's driver
cannot bind an integer past 64 bits (OverflowError) where PostgreSQL compares it. Django's form
fields refuse a NUL (`ProhibitNullCharactersValidator`), but the JSON doors (SCIM, the admin API)
hand values to their services without a Django form, and the admin's lists filter by whatever the
query string says, so those ask here first and answer their own 400. The OIDC engine checks its
form parameters itself (oauth_clients/oidc/backend.py, oauth_clients/oidc/views/token.py).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, QueryDict


def holds_nul(value: Any) -> bool:
    """Whether `value`, a parsed JSON document, has a NUL character in any key or string."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(holds_nul(item) for item in value)
    return False


def query_holds_nul(query: QueryDict) -> bool:
    """Whether a name or value of the query string `query` has a NUL character."""
    return any("\x00" in name or holds_nul(values) for name, values in query.lists())


def request_holds_nul(request: HttpRequest) -> bool:
    """Whether the path or the query string of `request` has a NUL character."""
    return "\x00" in request.path or query_holds_nul(request.GET)


def past_64_bits(value: str) -> bool:
    """Whether `value` is an integer (in any script's decimal digits) no 64-bit column holds."""
    digits = value.removeprefix("-")
    if not digits.isdecimal():
        return False
    # More digits than 2**63 has need no int() (which refuses past 4,300 digits anyway).
    return len(digits) > 19 or not -(2**63) <= int(value) < 2**63


def query_past_64_bits(query: QueryDict, *, text: tuple[str, ...] = ()) -> bool:
    """Whether a value of the query string `query` is an integer no 64-bit column holds, but
    for the parameters named in `text` (free text, where a long run of digits is just text)."""
    return any(
        past_64_bits(value)
        for name, values in query.lists()
        if name not in text
        for value in values
    )
