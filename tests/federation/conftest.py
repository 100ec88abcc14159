"""Fixtures of the brokering tests: a real upstream OpenID Provider (a second instance of this
IdP, tests/federation/upstream_server.py) and the IdP under test talking to it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.test import Client

from federation.models import UpstreamProvider
from federation.secrets import encrypt_secret
from tests.deploy.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# The host the brokering IdP is reached on in these tests (the test client's Host header): its
# callback URL, registered at the upstream, is on it. Nothing listens there: the tests carry
# the browser's redirects themselves.
BROKER_HOST = "127.0.0.1:8123"
BROKER = f"http://{BROKER_HOST}"


def callback_uri(slug: str) -> str:
    return f"{BROKER}/accounts/upstream/{slug}/login/callback/"


@dataclass(frozen=True)
class Upstream:
    url: str
    client_id: str
    client_secret: str


@contextlib.contextmanager
def running_upstream(tmp: Path, *redirect_uris: str) -> Iterator[Upstream]:
    """This project once more, on its own SQLite database, signing key and loopback port, its
    client for the brokering IdP registered with `redirect_uris`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "DJANGO_SETTINGS_MODULE": "tests.federation.upstream_settings",
        "DJANGO_DEBUG": "1",
        "IDP_ISSUER": url,
        "IDP_DATA_DIR": str(tmp),
        "IDP_LOG_STREAM": "stderr",
        "IDP_LOG_LEVEL": "WARNING",
        "IDP_STAFF_MFA_REQUIRED": "0",
    }
    log = (tmp / "upstream.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.federation.upstream_server", str(port), *redirect_uris],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the credentials, once the data is made
        assert line, (tmp / "upstream.log").read_text()[-3000:]
        credentials = json.loads(line)
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp / "upstream.log").read_text()[-3000:]
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{url}/healthz", timeout=2).ok:
                    break
            assert time.monotonic() < deadline, "the upstream IdP did not start"
            time.sleep(0.1)
        yield Upstream(url=url, **credentials)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def upstream_idp(tmp_path_factory) -> Iterator[Upstream]:
    with running_upstream(tmp_path_factory.mktemp("upstream-idp"), callback_uri("corp")) as up:
        yield up


@pytest.fixture
def corp(db, upstream_idp) -> UpstreamProvider:
    """The upstream IdP registered here: JIT on for corp.example, its loopback address allowed."""
    return UpstreamProvider.objects.create(
        name="Corp",
        slug="corp",
        kind=UpstreamProvider.Kind.OIDC,
        issuer=upstream_idp.url,
        client_id=upstream_idp.client_id,
        client_secret_encrypted=encrypt_secret(upstream_idp.client_secret),
        allow_private_network=True,
        email_domains="corp.example",
        create_accounts=True,
        scopes="openid profile email groups",
    )


@pytest.fixture
def broker() -> Client:
    """A browser at the brokering IdP (the IdP under test)."""
    return Client(HTTP_HOST=BROKER_HOST)
