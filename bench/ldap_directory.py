"""The company directory of `make bench` (the `directory_signin` operation): Debian's slapd on
loopback, started as the directory tests start it (tests/directory/slapd.py), seeded with
`count` people `dir0`, `dir1`, … in two nested groups, their passwords stored salted-SHA1
({SSHA}, slapd's default scheme for `ldappasswd`) as a real directory stores them; and the
IDP_LDAP_* environment that points the IdP at it."""

from __future__ import annotations

import base64
import hashlib
import os
import statistics
import time

from tests.directory.slapd import (
    GROUP_BASE,
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

USER_PREFIX = "dir"
PASSWORD = "bench-directory-password-horse"  # noqa: S105 (throwaway bench users)


def ssha(password: str) -> str:
    """RFC 2307's {SSHA}: base64(SHA-1(password + salt) + salt)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 (slapd's own scheme)
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def seed_ldif(count: int) -> str:
    """`count` people, all in `bench-staff`, which sits in `bench-everyone` (one nesting level,
    so each sign-in's group search walks a parent as alice's does in tests/directory)."""
    people = [
        person(f"{USER_PREFIX}{i}", "Directory", f"Person {i}", ssha(PASSWORD))
        for i in range(count)
    ]
    members = [user_dn(f"{USER_PREFIX}{i}") for i in range(count)]
    groups = [
        group("bench-everyone", group_dn("bench-staff")),
        group("bench-staff", *members),
    ]
    return "\n".join(people + groups)


def start(count: int) -> Slapd:
    return start_slapd(seed_ldif(count))


def environment(server: Slapd) -> dict[str, str]:
    """IDP_LDAP_* for an IdP signing people in against `server` (plain ldap:// on loopback:
    directory/checks.py allows it there)."""
    return {
        "IDP_LDAP_URL": server.url,
        "IDP_LDAP_BIND_DN": SERVICE_DN,
        "IDP_LDAP_BIND_PASSWORD": SERVICE_PASSWORD,
        "IDP_LDAP_USER_BASE": USER_BASE,
        "IDP_LDAP_GROUP_BASE": GROUP_BASE,
    }


def bind_round_trip_ms(server: Slapd, *, rounds: int = 200) -> dict[str, float]:
    """The directory's bind round trip as a sign-in pays it: a new connection and one person's
    simple bind (median and 90th percentile of `rounds`, milliseconds)."""
    import ldap

    times = []
    for i in range(rounds):
        started = time.perf_counter()
        connection = ldap.initialize(server.url)
        connection.simple_bind_s(user_dn(f"{USER_PREFIX}{i % 10}"), PASSWORD)
        times.append(1000 * (time.perf_counter() - started))
        connection.unbind_s()
    times.sort()
    return {"median": statistics.median(times), "p90": times[int(len(times) * 0.9)]}


def stop(server: Slapd) -> None:
    remove_slapd(server)
