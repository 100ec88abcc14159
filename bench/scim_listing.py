"""The SCIM listing figure: 10,000 users read through SCIM in pages of 100.

    .venv/bin/python bench/scim_listing.py [--count 10000] [--database-url URL]

Migrates a throwaway SQLite database (or uses DATABASE_URL's PostgreSQL database, which it
flushes), creates the people, issues a SCIM token through the service, then walks
`GET /scim/v2/Users?startIndex=…&count=100` to the end through Django's full request stack
(middleware, authentication, the SCIM views; in process, without a socket) and prints the
seconds. Every person is seen exactly once. Not part of `make bench` (wrk drives gunicorn
there); docs/guides/scim.md quotes the figure."""

from __future__ import annotations

import argparse
import os
import statistics
import time

from embedded import django_on_throwaway_database

PAGE = 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default="")
    options = parser.parse_args()
    django_on_throwaway_database(prefix="idp-bench-scim-", database_url=options.database_url)
    from django.test import Client

    from accounts.models import User
    from scim.services import issue_token

    User.objects.bulk_create(
        User(
            username=f"employee{i:05d}",
            email=f"employee{i:05d}@example.com",
            first_name="Employee",
            last_name=f"{i:05d}",
            password="!",  # noqa: S106 (Django's unusable-password marker)
        )
        for i in range(options.count)
    )
    _token, plain = issue_token(name="bench")
    client = Client(headers={"Authorization": f"Bearer {plain}"})

    def walk() -> float:
        seen: set[str] = set()
        started = time.monotonic()
        for start in range(1, options.count + 1, PAGE):
            response = client.get("/scim/v2/Users", {"startIndex": start, "count": PAGE})
            assert response.status_code == 200, response.content[:300]
            seen.update(resource["id"] for resource in response.json()["Resources"])
        seconds = time.monotonic() - started
        assert len(seen) == options.count, len(seen)
        return seconds

    times = [walk() for _ in range(options.runs)]
    print(
        f"{options.count} users in pages of {PAGE}: median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)}; {os.environ['DATABASE_URL'][:8]}...)"
    )


if __name__ == "__main__":
    main()
