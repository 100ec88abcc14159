"""Directory sign-in against local-password sign-in, through Django's test client.

    .venv/bin/python bench/directory_signin.py [--rounds 50]

Starts Debian's slapd on loopback (tests/directory/slapd.py), migrates a throwaway SQLite
database, and times, alternating, `rounds` sign-ins (POST /accounts/login/ to the redirect)
of a local user (Argon2id verification) and of a directory user (the service account's bind and
search, the disabled check, the person's bind, their groups' search, the user's rows
compared). Each sign-in is followed by a sign-out, outside the timing. Prints the medians.

A quick look without gunicorn; `make bench`'s `directory_signin` (bench/ldap_directory.py) is
the figure docs/guides/ldap.md and docs/performance.md quote."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    rounds = parser.parse_args().rounds
    workdir = Path(tempfile.mkdtemp(prefix="idp-bench-directory-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["IDP_DATA_DIR"] = str(workdir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "idp.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import override_settings

    from tests.directory.conftest import SEED
    from tests.directory.slapd import (
        GROUP_BASE,
        SERVICE_DN,
        SERVICE_PASSWORD,
        USER_BASE,
        remove_slapd,
        start_slapd,
    )

    call_command("migrate", verbosity=0)
    call_command("ensure_signing_key", verbosity=0)
    get_user_model().objects.create_user("local", "local@example.com", "local password 123")
    server = start_slapd(SEED)
    try:
        with override_settings(
            IDP_LDAP_URL=server.url,
            IDP_LDAP_BIND_DN=SERVICE_DN,
            IDP_LDAP_BIND_PASSWORD=SERVICE_PASSWORD,
            IDP_LDAP_USER_BASE=USER_BASE,
            IDP_LDAP_GROUP_BASE=GROUP_BASE,
            AUTHENTICATION_BACKENDS=[
                "directory.backend.DirectoryBackend",
                *settings.AUTHENTICATION_BACKENDS,
            ],
            ACCOUNT_RATE_LIMITS=False,
            IDP_STAFF_MFA_REQUIRED=False,
        ):
            client = Client()
            people = {"local": "local password 123", "alice": "alice directory password"}
            timings: dict[str, list[float]] = {name: [] for name in people}
            for name, password in people.items():  # warm-up: alice's rows are created
                sign_in(client, name, password)
            for _round in range(rounds):
                for name, password in people.items():
                    timings[name].append(sign_in(client, name, password))
            # The directory's own share: a new connection and the person's bind.
            timings["bind"] = [bind(server.url) for _round in range(rounds)]
    finally:
        remove_slapd(server)
    for name, values in timings.items():
        print(
            f"{name:>6}: median {statistics.median(values) * 1000:.1f} ms, "
            f"p90 {sorted(values)[int(len(values) * 0.9)] * 1000:.1f} ms over {len(values)}"
        )


def bind(url: str) -> float:
    import ldap

    from tests.directory.conftest import ALICE_PASSWORD
    from tests.directory.slapd import user_dn

    started = time.perf_counter()
    connection = ldap.initialize(url)
    connection.simple_bind_s(user_dn("alice"), ALICE_PASSWORD)
    elapsed = time.perf_counter() - started
    connection.unbind_s()
    return elapsed


def sign_in(client, login: str, password: str) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = client.post("/accounts/login/", {"login": login, "password": password})
    elapsed = time.perf_counter() - started
    assert response.status_code == 302, (login, response.status_code)
    client.post("/accounts/logout/")
    return elapsed


if __name__ == "__main__":
    main()
