"""Queries about users that more than one flow needs (no writes here)."""

from __future__ import annotations

from typing import Any

from allauth.account.internal.userkit import filter_users_by_email, get_user_by_username

from accounts.models import User


def users_for_credentials(credentials: dict[str, Any]) -> list[User]:
    """The accounts a sign-in attempt named, found the way allauth's backend finds them.

    allauth's login form passes `email` (when the login looks like an address) and `username`
    (always, because usernames may look like addresses); both may name the same account.
    """
    found: dict[int, User] = {}
    email = credentials.get("email")
    if email:
        for user in filter_users_by_email(email, prefer_verified=True, for_login=True):
            found[user.pk] = user
    username = credentials.get("username")
    if username:
        by_username = get_user_by_username(username)
        if by_username is not None:
            found[by_username.pk] = by_username  # type: ignore[assignment]
        if not email and "@" in username:
            # Other callers pass an address as `username` (allauth's backend tries it as email).
            for user in filter_users_by_email(username, prefer_verified=True, for_login=True):
                found[user.pk] = user
    return list(found.values())
