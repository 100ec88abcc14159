"""The one authentication backend: allauth's (username or email) plus the per-account lock."""

from __future__ import annotations

from typing import Any

from allauth.account import app_settings as account_settings
from allauth.account.app_settings import LoginMethod
from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import connections, router
from django.db.models import Count, Window

from accounts.mfa_policy import has_second_factor_annotation
from accounts.stages import has_verified_email_annotation
from idp.db.prepared import PreparedLookup

# How many accounts the name matched (a window over the lookup's rows, before its LIMIT 1).
_MATCHES = "signin_username_matches"

# allauth's lookup by username (userkit.filter_users_by_username with
# ACCOUNT_PRESERVE_USERNAME_CASING: `username__iexact`), with the answers the login stages
# would read next in two more statements: a verified address (accounts.stages) and a second
# factor (accounts.mfa_policy.MFAAdapter). Compiled once (idp.db.prepared): building
# the two subqueries through the ORM at each sign-in cost as much CPU as the two statements
# they replace. The answers describe the rows as this statement found them, on a User
# instance made for this request only (a later request loads the user afresh, without
# them), so they cannot go stale beyond this sign-in.
_USER_BY_USERNAME = PreparedLookup(
    lambda username: (
        get_user_model()
        ._default_manager.filter(username__iexact=username)
        .annotate(
            **has_verified_email_annotation(),
            **has_second_factor_annotation(),
            **{_MATCHES: Window(Count("*"))},
        )[:1]
    )
)


class SignInSourceUnavailable(Exception):
    """Raised by a backend whose source of passwords (the company directory: directory/) does
    not answer. The sign-in shows `message` as a form error: not a wrong password, so no
    strike towards the lock, and not a server error. Defined here, below the backends that
    raise it, so accounts never imports them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LockoutAwareBackend(AuthenticationBackend):
    """allauth's backend (sign-in by username or email) that refuses locked accounts.

    A locked account cannot authenticate even with the right password. The lock stops new
    sign-ins only: `get_user` keeps Django's plain `is_active` test, so someone who fails on
    purpose against a colleague's username cannot sign that colleague out of their sessions.
    Inactive users are refused in both places (Django's rule).
    """

    def user_can_authenticate(self, user: Any) -> bool:
        is_locked = getattr(user, "is_locked", None)
        if is_locked is not None and is_locked():
            return False
        return super().user_can_authenticate(user)

    def _authenticate_by_username(self, username: str, password: str) -> Any:
        # allauth's lookup in one compiled statement that also answers the login stages'
        # checks (`_USER_BY_USERNAME`); any other allauth configuration keeps allauth's own.
        if (
            LoginMethod.USERNAME not in account_settings.LOGIN_METHODS
            or account_settings.USER_MODEL_USERNAME_FIELD != "username"
            or not account_settings.PRESERVE_USERNAME_CASING
            or not username
        ):
            return super()._authenticate_by_username(username, password)
        User = get_user_model()
        connection = connections[router.db_for_read(User)]
        # The value as Django's `iexact` lookup binds it (SQLite's LIKE escapes % and _).
        found: Any = _USER_BY_USERNAME.first(connection.ops.prep_for_iexact_query(username), User)
        if found is not None and getattr(found, _MATCHES) > 1:
            # Names differing only in case: allauth's rule (no one, unless a single stored
            # name matches in Python's lower case), read allauth's way.
            return super()._authenticate_by_username(username, password)
        # allauth's userkit.get_user_by_username keeps the row whose stored name matches in
        # Python's lower case as well as the database's.
        if found is not None and found.username.lower() != username.lower():
            found = None
        return self._check_password(found, password)

    def _authenticate_by_email(self, email: str, password: str) -> Any:
        # allauth tries a username as an email address first (for apps that pass every login
        # as `username`). Every address has an "@" (EmailField), so without one that lookup
        # (two queries per sign-in) cannot find anyone; the time it takes depends only on the
        # typed login, not on which accounts exist.
        if "@" not in (email or ""):
            return None
        return super()._authenticate_by_email(email, password)

    def get_user(self, user_id: Any) -> Any:
        User = get_user_model()
        try:
            user = User._default_manager.get(pk=user_id)
        except User.DoesNotExist:
            return None
        # Django's own rule (is_active), without the lock test above.
        return user if ModelBackend.user_can_authenticate(self, user) else None
