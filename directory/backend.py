"""Sign-in with the company directory's password: django-auth-ldap's backend (the service
account finds the person, their own bind checks the password), one more backend beside the
local one (accounts.backends), asked first: it hands local accounts to the local backend
without asking the directory, and spares a directory person the local backend's Argon2id
run (Django hashes once even for an unusable password, to hide which accounts exist). A
directory that does not answer is a form error, never a server error nor a strike towards
the lock."""

from __future__ import annotations

import unicodedata
from typing import Any

import ldap
from django.contrib.auth.backends import ModelBackend
from django.db.models import F
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django_auth_ldap.backend import LDAPBackend, ldap_error
from django_auth_ldap.config import LDAPSearch

from accounts import services as account_services
from accounts.backends import SignInSourceUnavailable
from accounts.models import User
from directory import services
from directory.config import directory_settings
from directory.models import DirectoryAccount
from directory.reader import dn_key, is_disabled, read_groups_of, user_from_entry

# The longest sign-in name sent to the directory (Active Directory's userPrincipalName is
# at most 1,024 characters; sAMAccountName 20).
MAX_USERNAME_LENGTH = 256


class DirectoryUnavailable(Exception):
    """The directory could not be asked (down, timed out, refused TLS or the service account)."""


def is_acceptable_username(username: str) -> bool:
    """Whether a typed name may be sent to the directory at all.

    Filter syntax (`*)(uid=*`) is harmless either way (python-ldap escapes every value of the
    search, RFC 4515 §3), but control and format characters (NUL, bidi marks) never belong
    in a name, and a name that Unicode compatibility normalisation changes (fullwidth
    letters, ligatures) is refused: directories fold such forms when matching (RFC 4518
    string preparation), so it would name another person's entry under another spelling.
    """
    if not username or len(username) > MAX_USERNAME_LENGTH:
        return False
    if unicodedata.normalize("NFKC", username) != username:
        return False
    return not any(unicodedata.category(char)[0] == "C" for char in username)


class DirectoryBackend(LDAPBackend):  # type: ignore[misc]  # django-auth-ldap has no types
    """django-auth-ldap configured from IDP_LDAP_* (directory.config), the user and their
    groups written through directory.services."""

    # Nothing in settings carries this prefix: every value comes from `default_settings`.
    settings_prefix = "IDP_LDAP_BACKEND_"

    @property
    def default_settings(self) -> dict[str, Any]:  # type: ignore[override]
        config = directory_settings()
        return {
            "SERVER_URI": config.url,
            "BIND_DN": config.bind_dn,
            "BIND_PASSWORD": config.bind_password,
            "START_TLS": config.start_tls,
            "CONNECTION_OPTIONS": config.connection_options(),
            "USER_SEARCH": LDAPSearch(
                config.user_base,
                ldap.SCOPE_SUBTREE,
                config.sign_in_filter,
                config.user_attributes,
            ),
            # The user is written by directory.services (get_or_build_user), not the library.
            "ALWAYS_UPDATE_USER": False,
            "USER_ATTR_MAP": {},
            # RFC 4513 §5.1.2: a bind with a name and no password is unauthenticated (anonymous);
            # it must never count as a sign-in.
            "PERMIT_EMPTY_PASSWORD": False,
            "CACHE_TIMEOUT": 0,
        }

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if not username or not password or not is_acceptable_username(username):
            return None
        # One indexed query: whether the name is a local account's, and its lock.
        local = (
            User.objects.filter(username__iexact=username)
            .annotate(directory_dn=F("directory_account__dn"))
            .first()
        )
        if local is not None:
            if local.directory_dn is None:
                # A local account (a break-glass administrator) is never the directory's, even
                # when the directory has an entry of the same name; the local backend checks it.
                return None
            if local.is_locked():
                return None  # the lock holds: the directory is not even asked
        elif "@" in username:
            # An address: a local account's goes to the local backend; a directory person's
            # (IDP_LDAP_LOGIN_ATTRIBUTES with `mail`) keeps their lock here as their name does.
            owners = list(
                User.objects.filter(email__iexact=username).annotate(
                    directory_dn=F("directory_account__dn")
                )[:2]
            )
            if any(owner.directory_dn is None for owner in owners):
                return None  # a local account's address: the local backend signs it in
            if any(owner.is_locked() for owner in owners):
                return None
            local = owners[0] if len(owners) == 1 else None
        # This instance serves this one call (Django's authenticate loads backends afresh).
        self.sign_in_request = request
        try:
            return super().authenticate(request, username=username, password=password)
        except DirectoryUnavailable:
            account_services.record_failed_login(
                request=request,
                users=[local] if local is not None else [],
                reason="directory_unavailable",
            )
            raise SignInSourceUnavailable(
                _("The company directory is unavailable. Try again shortly.")
            ) from None

    def authenticate_ldap_user(self, ldap_user: Any, password: str) -> Any:
        dn = ldap_user.dn  # the service account's search; its errors reach `_unavailable`
        if dn is None:
            return None
        config = directory_settings()
        try:
            disabled = is_disabled(ldap_user.connection, config, dn)
        except ldap.LDAPError as error:
            raise DirectoryUnavailable(str(error)) from error
        if disabled:
            # Refused at once, without trying the password; deactivated here too, so the
            # person's sessions and tokens end now rather than at the next sync.
            account = DirectoryAccount.objects.select_related("user").filter(dn=dn_key(dn)).first()
            if account is not None:
                services.deactivate_directory_user(
                    user=account.user, reason="disabled_in_directory"
                )
            return None
        return ldap_user.authenticate(password)

    def get_or_build_user(self, username: str, ldap_user: Any) -> tuple[Any, bool]:
        # Called after the person's own bind succeeded.
        config = directory_settings()
        entry = user_from_entry(config, ldap_user.dn, ldap_user.attrs or {}, disabled=False)
        graph = read_groups_of(ldap_user.connection, config, ldap_user.dn)
        try:
            user = services.record_directory_sign_in(
                entry=entry,
                graph=graph,
                source=config.source,
                request=getattr(self, "sign_in_request", None),
            )
        except services.DirectoryConflict as conflict:
            raise ldap_user.AuthenticationFailed(str(conflict)) from conflict
        return user, False

    def get_user(self, user_id: Any) -> Any:
        try:
            user = User._default_manager.get(pk=user_id)
        except User.DoesNotExist:
            return None
        # Django's own rule (is_active), as the local backend's get_user.
        return user if ModelBackend.user_can_authenticate(self, user) else None  # type: ignore[arg-type]


@receiver(ldap_error, sender=DirectoryBackend)
def _unavailable(sender: Any, context: str, exception: Exception, **kwargs: Any) -> None:
    # django-auth-ldap logs LDAP errors and answers "no such user"; its `ldap_error` signal
    # is the one place it lets a receiver's exception through. Raising here turns a directory
    # that is down into a message instead of a wrong-password strike.
    raise DirectoryUnavailable(str(exception)) from exception
