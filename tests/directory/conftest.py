"""The directory tests' OpenLDAP (tests/directory/slapd.py): one seeded slapd for the whole
run, settings pointing at it, and helpers to change entries as an administrator would."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import ldap
import pytest

from tests.directory.slapd import (
    GROUP_BASE,
    LOCKED_FOR_GOOD,
    SERVICE_DN,
    SERVICE_PASSWORD,
    USER_BASE,
    Slapd,
    group,
    group_dn,
    person,
    remove_slapd,
    start_slapd,
    user_dn,
)

DIRECTORY_BACKEND = "directory.backend.DirectoryBackend"
ALICE_PASSWORD = "alice directory password"

# alice is in finance-team, which sits in both finance (under everyone) and auditors; and
# directly in vpn-users. bob is locked (ppolicy). A directory entry named admin clashes with
# the local break-glass administrator of the tests that create one.
SEED = "\n".join(
    [
        person(
            "alice",
            "Alice",
            "Adams",
            ALICE_PASSWORD,
            employeeNumber="E-1001",
            departmentNumber="Finance",
            title="Analyst",
            objectClass="idpTestPrincipal",
            userPrincipalName="alice@corp.example",
        ),
        person(
            "bob", "Bob", "Brown", "bob directory password", pwdAccountLockedTime=LOCKED_FOR_GOOD
        ),
        person("carol", "Carol", "Clark", "carol directory password"),
        person("admin", "Mallory", "Directory", "directory admin password"),
        group("everyone", group_dn("finance")),
        group("finance", group_dn("finance-team")),
        group("auditors", group_dn("finance-team")),
        group("finance-team", user_dn("alice")),
        group("vpn-users", user_dn("alice"), user_dn("carol")),
    ]
)
# alice's groups as the directory says them (nesting resolved).
ALICE_GROUPS = {"finance-team", "finance", "auditors", "everyone", "vpn-users"}


def configure(settings, server: Slapd, **overrides) -> None:
    settings.IDP_LDAP_URL = server.url
    settings.IDP_LDAP_BIND_DN = SERVICE_DN
    settings.IDP_LDAP_BIND_PASSWORD = SERVICE_PASSWORD
    settings.IDP_LDAP_USER_BASE = USER_BASE
    settings.IDP_LDAP_GROUP_BASE = GROUP_BASE
    settings.IDP_LDAP_TIMEOUT_SECONDS = 1
    settings.IDP_LDAP_START_TLS = False
    settings.IDP_LDAP_CA_FILE = ""
    for name, value in overrides.items():
        setattr(settings, name, value)
    if DIRECTORY_BACKEND not in settings.AUTHENTICATION_BACKENDS:
        # First, as idp/settings.py puts it.
        settings.AUTHENTICATION_BACKENDS = [DIRECTORY_BACKEND, *settings.AUTHENTICATION_BACKENDS]


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    server = start_slapd(SEED)
    yield server
    remove_slapd(server)


@pytest.fixture
def directory(slapd, settings) -> Slapd:
    """The feature on, against the shared slapd."""
    configure(settings, slapd)
    return slapd


def add_person(server: Slapd, uid: str, password: str, *groups: str, **extra: str) -> str:
    """A new entry (and memberships of existing groups), as the directory's administrator."""
    connection = server.connect()
    ldif = person(uid, uid.capitalize(), "Tester", password, **extra)
    attrs = [
        (line.split(": ", 1)[0], [line.split(": ", 1)[1].encode()])
        for line in ldif.strip().splitlines()[1:]
    ]
    merged: dict[str, list[bytes]] = {}
    for name, values in attrs:
        merged.setdefault(name, []).extend(values)
    connection.add_s(user_dn(uid), list(merged.items()))
    for name in groups:
        connection.modify_s(group_dn(name), [(ldap.MOD_ADD, "member", [user_dn(uid).encode()])])
    connection.unbind_s()
    return user_dn(uid)


def lock_person(server: Slapd, uid: str) -> None:
    connection = server.connect()
    connection.modify_s(
        user_dn(uid), [(ldap.MOD_REPLACE, "pwdAccountLockedTime", [LOCKED_FOR_GOOD.encode()])]
    )
    connection.unbind_s()


def unlock_person(server: Slapd, uid: str) -> None:
    connection = server.connect()
    connection.modify_s(user_dn(uid), [(ldap.MOD_DELETE, "pwdAccountLockedTime", None)])
    connection.unbind_s()


def delete_person(server: Slapd, uid: str) -> None:
    connection = server.connect()
    connection.delete_s(user_dn(uid))
    connection.unbind_s()


class SilentServer:
    """A TCP port on loopback that accepts connections (the kernel completes the handshake
    on a listening socket) and never answers: a directory that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.url = f"ldap://127.0.0.1:{self.socket.getsockname()[1]}/"
        self._stop = threading.Event()

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()
