"""Template context shared by every page: the company's branding (accounts.branding).

Values are lazy: a page that never prints them, or an error view that passes its own
(database-free) values, never touches the cache or the database.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.branding import CONTEXT_NAMES, as_context, get_branding


def branding(request: HttpRequest) -> dict[str, Any]:
    values = SimpleLazyObject(lambda: as_context(get_branding()))

    def value_of(name: str) -> SimpleLazyObject:
        return SimpleLazyObject(lambda: values[name])

    return {name: value_of(name) for name in CONTEXT_NAMES}
