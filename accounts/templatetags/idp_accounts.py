"""Template tags for the account pages."""

from allauth.account.adapter import get_adapter
from django import template
from django.http import HttpRequest

register = template.Library()


@register.simple_tag
def signup_open(request: HttpRequest) -> bool:
    """Whether self sign-up is open (the adapter decides; closed by default)."""
    return get_adapter(request).is_open_for_signup(request)
