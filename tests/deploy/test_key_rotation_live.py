"""A running IdP follows a rotation of its database signing keys within seconds, no restart.

A gunicorn instance of two workers (deploy/gunicorn.conf.py) serves the embedded default (SQLite
in the data directory, the database cache every process shares) with
`IDP_SIGNING_KEY_STORE=database`. `manage.py rotate_signing_key` runs in another process, as an
operator or cron would; the test polls the server's JWKS (both workers answer in turn) until
every answer shows the change, and fails if that takes longer than the refresh interval plus
a margin for this loaded machine.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.deploy.servers import Server, collected_static, manage, migrated_sqlite, production_env

pytestmark = [pytest.mark.once]

REFRESH_SECONDS = 1
# The refresh interval, plus the time a loaded 2-core machine may take to answer.
WITHIN_SECONDS = REFRESH_SECONDS + 9


def jwks_kids(url: str) -> list[str]:
    response = requests.get(f"{url}/.well-known/jwks.json", timeout=5)
    assert response.status_code == 200, response.text
    return [key["kid"] for key in response.json()["keys"]]


def wait_for(url: str, expected: list[str]) -> float:
    """Seconds until six answers in a row (both workers) publish `expected`."""
    started = time.monotonic()
    in_a_row = 0
    while time.monotonic() - started < WITHIN_SECONDS:
        in_a_row = in_a_row + 1 if jwks_kids(url) == expected else 0
        if in_a_row >= 6:
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"JWKS still {jwks_kids(url)}, not {expected}, after {WITHIN_SECONDS} s")


def kid_lines(output: str) -> list[str]:
    """The kids (RFC 7638 thumbprints: 43 base64url characters) a command printed."""
    return re.findall(r"(?<![\w-])[\w-]{43}(?![\w-])", output)


def test_a_running_server_publishes_and_signs_with_a_rotated_key_without_restart(tmp_path):
    env = production_env(
        tmp_path,
        IDP_STATIC_ROOT=collected_static(),
        IDP_OIDC_PRIVATE_KEY_FILE="",
        IDP_SIGNING_KEY_STORE="database",
        IDP_KEY_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        IDP_SIGNING_KEYS_REFRESH_SECONDS=str(REFRESH_SECONDS),
    )
    migrated_sqlite(Path(env["IDP_DATA_DIR"]) / "idp.sqlite3")
    first = kid_lines(manage("rotate_signing_key", "--auto", env=env))
    assert len(first) == 1
    server = Server("keys", env, tmp_path, workers=2).start()
    try:
        assert jwks_kids(server.url) == first

        staged = kid_lines(manage("rotate_signing_key", "--stage", env=env))
        assert len(staged) == 1
        assert staged != first
        seconds_staged = wait_for(server.url, [*first, *staged])

        manage("rotate_signing_key", "--activate", "--force", env=env)
        seconds_active = wait_for(server.url, [*staged, *first])
        assert server.alive()
    finally:
        server.stop()
    # Measured, for the report: how long a change took to be seen everywhere.
    print(f"staged seen in {seconds_staged:.2f} s, activated seen in {seconds_active:.2f} s")
