"""Without Redis, every process of the IdP shares one cache: a used two-step code and the sign-in
rate limits count across processes.

allauth records each accepted TOTP code in the cache (RFC 6238 §5.2: a code is accepted once)
and keeps its rate-limit counters there, so a cache of each process's own would accept one code
once per process and multiply every limit by the number of processes. Two gunicorn instances
of one worker each (deploy/gunicorn.conf.py, the default settings: no REDIS_URL) serve one
SQLite database: two processes a test can address one by one, where two workers behind one
socket would take turns as the kernel pleases.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest
import requests
from allauth.mfa.totp.internal.auth import generate_totp_secret
from django.conf import settings

from tests.accounts.conftest import MFA_AUTHENTICATE_URL, totp_code
from tests.deploy.servers import Server, collected_static, manage, migrated_sqlite, production_env
from tests.deploy.test_scale_out import form_fields, sign_in, signed_in

pytestmark = [pytest.mark.once]

PASSWORD = "shared cache " + secrets.token_urlsafe(12)
TOTP_SECRET = generate_totp_secret()
TOO_MANY = "Too many failed login attempts"
SETUP_SCRIPT = f"""
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth import get_user_model
user = get_user_model().objects.create_user("alice", "alice@example.com", {PASSWORD!r})
TOTP.activate(user, {TOTP_SECRET!r})
"""


@dataclass
class Pair:
    a: Server
    b: Server


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[Pair]:
    tmp: Path = tmp_path_factory.mktemp("shared-cache")
    # One proxy in front (as Caddy in deploy/compose.yaml): each test names its own client
    # address in X-Forwarded-For, so the tests' rate-limit counts stay apart.
    env = production_env(tmp, IDP_TRUSTED_PROXY_COUNT="1", IDP_STATIC_ROOT=collected_static())
    # The embedded default: no Redis, the SQLite file in the data directory.
    assert "REDIS_URL" not in env
    assert "DATABASE_URL" not in env
    migrated_sqlite(Path(env["IDP_DATA_DIR"]) / "idp.sqlite3")
    manage("shell", "-c", SETUP_SCRIPT, env=env)
    a = Server("A", env, tmp, workers=1)
    b = Server("B", env, tmp, workers=1)
    try:
        a.start()
        b.start()
        yield Pair(a=a, b=b)
    finally:
        a.stop()
        b.stop()


def browser(client_ip: str) -> requests.Session:
    session = requests.Session()
    session.headers["X-Forwarded-For"] = client_ip
    return session


def send_code(session: requests.Session, base: str, code: str) -> requests.Response:
    page = session.get(f"{base}{MFA_AUTHENTICATE_URL}", allow_redirects=False, timeout=20)
    assert page.status_code == HTTPStatus.OK, page.status_code
    return session.post(
        f"{base}{MFA_AUTHENTICATE_URL}",
        data={"csrfmiddlewaretoken": form_fields(page.text)["csrfmiddlewaretoken"], "code": code},
        allow_redirects=False,
        timeout=20,
    )


@pytest.mark.spec("RFC 6238", "5.2")
def test_a_totp_code_used_through_one_process_is_refused_through_another(pair):
    first, second = browser("198.51.100.1"), browser("198.51.100.1")
    # Both browsers pass the password step first (A, then B), so the one code below is sent
    # twice within its 30-second step.
    for session, server in ((first, pair.a), (second, pair.b)):
        response = sign_in(session, server.url, "alice", PASSWORD)
        assert response.status_code == HTTPStatus.FOUND, response.text[:500]
        assert response.headers["Location"].endswith(MFA_AUTHENTICATE_URL)
    code = totp_code(TOTP_SECRET)

    accepted = send_code(first, pair.a.url, code)
    assert accepted.status_code == HTTPStatus.FOUND, accepted.text[:500]
    assert signed_in(first, pair.b.url)  # the session is in the database: both know it

    replayed = send_code(second, pair.b.url, code)
    assert replayed.status_code == HTTPStatus.OK, "the used code signed in again through B"
    assert not signed_in(second, pair.b.url)
    assert not signed_in(second, pair.a.url)


def test_the_per_address_sign_in_limit_bites_at_its_configured_attempt_across_processes(pair):
    # allauth's per-address limit on failed sign-ins (ACCOUNT_RATE_LIMITS["login_failed"]).
    # allauth's rate syntax: "amount/period/per", comma-separated.
    (per_address,) = [
        int(rate.split("/")[0])
        for rate in settings.ACCOUNT_RATE_LIMITS["login_failed"].split(",")
        if rate.strip().endswith("/ip")
    ]
    session = browser("198.51.100.2")
    answers = []
    # One wrong password per unknown name, so neither the per-name limit nor the account lock
    # answers first; the attempts alternate between the two processes.
    for attempt in range(per_address + 1):
        server = (pair.a, pair.b)[attempt % 2]
        response = sign_in(session, server.url, f"nobody{attempt}", "wrong password")
        assert response.status_code == HTTPStatus.OK, response.status_code
        answers.append(TOO_MANY in response.text)
    assert answers == [False] * per_address + [True]
