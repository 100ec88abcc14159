"""Text that may not reach the database: NUL characters in a JSON body or a query string.

PostgreSQL's text columns cannot hold U+0000: psycopg refuses the statement (DataError), so a
NUL character in a value answers a 500 on PostgreSQL where SQLite stores it. Django's form fields
refuse one (`ProhibitNullCharactersValidator`), but the JSON doors (SCIM, the admin API) hand
values to their services without a Django form, so they ask here first and answer their own
protocol's 400. The OIDC engine checks its form parameters itself
(oauth_clients/oidc/backend.py, oauth_clients/oidc/views/token.py).
"""

from __future__ import annotations

from typing import Any

from django.http import QueryDict


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
