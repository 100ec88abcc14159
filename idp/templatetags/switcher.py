"""Where the language switcher returns: this page, minus a `next` it would not follow itself."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from django import template
from django.http import HttpRequest

from accounts.adapter import is_safe_redirect

register = template.Library()


@register.filter
def switcher_return_path(request: Any) -> str:
    """The current path and query, with any `next` that is not a safe redirect left out, so the
    page never echoes a foreign address back (accounts/adapter.py `is_safe_redirect`). A page
    rendered without its request (the server-error page) returns nowhere in particular."""
    if not isinstance(request, HttpRequest):
        return ""
    pairs = parse_qsl(request.META.get("QUERY_STRING", ""), keep_blank_values=True)
    kept = [(key, value) for key, value in pairs if key != "next" or is_safe_redirect(value)]
    if len(kept) == len(pairs):
        return request.get_full_path()
    return f"{request.path}?{urlencode(kept, safe='/')}" if kept else request.path
