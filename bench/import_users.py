"""`manage.py import_users` at the issue's scale: 10,000 people with bcrypt and PBKDF2 hashes.

    .venv/bin/python bench/import_users.py [--count 10000] [--database-url URL]

Migrates a throwaway SQLite database (or uses DATABASE_URL's PostgreSQL database, which it
flushes), writes the CSV that tests/accounts/test_import_users.py writes at 1,000 rows, and
times the import command end to end; then a sample signs in with the old password through
allauth's login view and is re-hashed to Argon2id. Prints the seconds; docs/guides/
import-users.md quotes them. Not part of `make bench` (wrk drives gunicorn there)."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import time

from embedded import django_on_throwaway_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    workdir = django_on_throwaway_database(
        prefix="idp-bench-import-", database_url=options.database_url
    )
    import bcrypt
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from tests.accounts.conftest import sign_in
    from tests.accounts.test_hash_formats import ab64
    from tests.accounts.test_import_users import OLD_PASSWORD, SALT, scale_rows, write_csv

    bcrypt_hash = "$2y$" + bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]
    derived = hashlib.pbkdf2_hmac("sha256", OLD_PASSWORD.encode(), SALT, 1000)
    pbkdf2_hash = f"$pbkdf2-sha256$1000${ab64(SALT)}${ab64(derived)}"
    path = write_csv(workdir / "people.csv", scale_rows(options.count, bcrypt_hash, pbkdf2_hash))

    started = time.monotonic()
    call_command("import_users", str(path), stdout=io.StringIO())
    seconds = time.monotonic() - started
    created = User.objects.count()
    print(f"{created} users imported in {seconds:.1f} s ({os.environ['DATABASE_URL'][:8]}...)")
    for username in ["user00000", "user00001"]:
        assert sign_in(Client(), username, OLD_PASSWORD).status_code == 302
        assert User.objects.get(username=username).password.startswith("argon2$argon2id$")
    print("a sample signed in with the old password and was re-hashed to Argon2id")


if __name__ == "__main__":
    main()
