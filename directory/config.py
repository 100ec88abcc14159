"""The directory's settings (IDP_LDAP_*) read at call time, and python-ldap connections made
from them: bounded timeouts, StartTLS or LDAPS with the configured CA, the service account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import ldap
from django.conf import settings

# The user fields the directory keeps (accounts.models.User), by their setting's key.
MAPPED_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "employee_id",
    "department",
    "job_title",
)


@dataclass(frozen=True)
class DirectorySettings:
    url: str
    bind_dn: str
    bind_password: str
    user_base: str
    user_filter: str
    login_attributes: tuple[str, ...]
    disabled_filter: str
    group_base: str
    group_filter: str
    group_name_attr: str
    group_member_attr: str
    start_tls: bool
    ca_file: str
    timeout: int
    page_size: int
    attr_map: dict[str, str]

    @property
    def source(self) -> str:
        """What the users' rows name as their source: the directory's host (no credentials)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")

    @property
    def all_users_filter(self) -> str:
        # The sign-in filter with every name in place of one: "(uid=%(user)s)" -> "(uid=*)".
        return self.user_filter % {"user": "*"}

    @property
    def sign_in_filter(self) -> str:
        """The sign-in search: the user filter alone, or, with login attributes, the people it
        selects whose name or any login attribute is the typed value, e.g.
        `(&(uid=*)(|(uid=%(user)s)(mail=%(user)s)))`. `%(user)s` is filled in by
        django-auth-ldap's LDAPSearch, which escapes the value (RFC 4515 §3,
        `ldap.filter.escape_filter_chars`): the typed value is never filter syntax."""
        if not self.login_attributes:
            return self.user_filter
        named = "".join(f"({attr}=%(user)s)" for attr in self.login_attributes)
        return f"(&{self.all_users_filter}(|{self.user_filter}{named}))"

    @property
    def user_attributes(self) -> list[str]:
        return sorted({attr for attr in self.attr_map.values() if attr})

    def connection_options(self) -> dict[int, Any]:
        """python-ldap options for every connection: bounded waits, no referrals followed
        (Active Directory's would reconnect elsewhere, unbounded), certificates checked."""
        options: dict[int, Any] = {
            ldap.OPT_PROTOCOL_VERSION: ldap.VERSION3,
            ldap.OPT_REFERRALS: 0,
            ldap.OPT_NETWORK_TIMEOUT: float(self.timeout),
            ldap.OPT_TIMEOUT: float(self.timeout),
            ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
        }
        if self.ca_file:
            options[ldap.OPT_X_TLS_CACERTFILE] = self.ca_file
        # libldap applies the TLS options above to a new TLS context only (last, by design).
        options[ldap.OPT_X_TLS_NEWCTX] = 0
        return options


def directory_settings() -> DirectorySettings:
    return DirectorySettings(
        url=settings.IDP_LDAP_URL,
        bind_dn=settings.IDP_LDAP_BIND_DN,
        bind_password=settings.IDP_LDAP_BIND_PASSWORD,
        user_base=settings.IDP_LDAP_USER_BASE,
        user_filter=settings.IDP_LDAP_USER_FILTER,
        login_attributes=tuple(
            attr.strip() for attr in settings.IDP_LDAP_LOGIN_ATTRIBUTES if attr.strip()
        ),
        disabled_filter=settings.IDP_LDAP_DISABLED_FILTER,
        group_base=settings.IDP_LDAP_GROUP_BASE,
        group_filter=settings.IDP_LDAP_GROUP_FILTER,
        group_name_attr=settings.IDP_LDAP_GROUP_NAME_ATTR,
        group_member_attr=settings.IDP_LDAP_GROUP_MEMBER_ATTR,
        start_tls=settings.IDP_LDAP_START_TLS,
        ca_file=settings.IDP_LDAP_CA_FILE,
        timeout=max(1, int(settings.IDP_LDAP_TIMEOUT_SECONDS)),
        page_size=max(1, int(settings.IDP_LDAP_PAGE_SIZE)),
        attr_map=dict(settings.IDP_LDAP_ATTR_MAP),
    )


def is_configured() -> bool:
    return bool(settings.IDP_LDAP_URL)


def open_connection(config: DirectorySettings) -> Any:
    """A connection bound as the service account (LDAPError when the directory is down,
    refuses TLS or refuses the account)."""
    connection = ldap.initialize(config.url, bytes_mode=False)
    for option, value in config.connection_options().items():
        connection.set_option(option, value)
    if config.start_tls:
        connection.start_tls_s()
    connection.simple_bind_s(config.bind_dn, config.bind_password)
    return connection
