"""Template tags for the account pages."""

from typing import Any

from allauth.account.adapter import get_adapter
from django import template
from django.http import HttpRequest

from accounts.devices import describe_user_agent

register = template.Library()


@register.simple_tag
def signup_open(request: HttpRequest) -> bool:
    """Whether self sign-up is open (the adapter decides; closed by default)."""
    return get_adapter(request).is_open_for_signup(request)


@register.filter
def device(session: Any) -> str:
    """A session's (or audit row's) user agent in words: "Firefox on Windows"."""
    return describe_user_agent(getattr(session, "user_agent", "") or "")
