"""Helpers for the account tests: sign in through allauth's page, read emailed links."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"
RESET_URL = "/accounts/password/reset/"
CHANGE_URL = "/accounts/password/change/"
OVERVIEW_URL = "/account/"
WRONG_PASSWORD_ERROR = "The username and/or password you specified are not correct."


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """allauth's rate-limit counters live in the cache; every test starts without any.

    Only the in-process cache is cleared (a shared Redis may serve other runs).
    """
    if settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        cache.clear()


def sign_in(client: Client, login: str, password: str, **extra: str):
    """POST allauth's login form the way a browser does (GET first for the CSRF cookie)."""
    client.get(LOGIN_URL)
    return client.post(LOGIN_URL, {"login": login, "password": password, **extra})


def is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def last_link(pattern: str = r"https?://\S+/accounts/password/reset/key/\S+/") -> str:
    """The last matching link from the emails sent so far."""
    assert mail.outbox, "no email was sent"
    links = re.findall(pattern, mail.outbox[-1].body)
    assert links, mail.outbox[-1].body
    return links[-1]
