"""Fixtures of the brokering tests: a real upstream OpenID Provider (a second instance of this
IdP, tests/federation/upstream_server.py) and the IdP under test talking to it."""

from __future__ import annotations

import base64
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
from django.conf import settings
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


# The upstream IdP registered here as a SAML identity provider (federation/saml/).
SAML_SLUG = "corp-saml"


def saml_sp_entity_id(slug: str) -> str:
    # federation.saml.auth.sp_entity_id: on the issuer, whatever the Host header.
    return f"{settings.IDP_ISSUER}/accounts/saml/{slug}/metadata/"


def saml_acs_uri(slug: str) -> str:
    return f"{BROKER}/accounts/saml/{slug}/acs/"


@dataclass(frozen=True)
class Upstream:
    url: str
    data_dir: Path
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
        "UPSTREAM_SAML_SP_ENTITY_ID": saml_sp_entity_id(SAML_SLUG),
        "UPSTREAM_SAML_ACS": saml_acs_uri(SAML_SLUG),
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
        yield Upstream(url=url, data_dir=tmp, **credentials)
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


@pytest.fixture(scope="session")
def genuine_saml_response(upstream_idp) -> bytes:
    """One response the upstream SAML IdP really issued (carol's), to an AuthnRequest made with
    python3-saml as the brokering IdP makes it; the bad-input tests change copies of it."""
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    from federation.saml.metadata import certificate_bodies, read_idp_metadata
    from tests.federation.saml_helpers import sign_in_upstream_saml

    idp = read_idp_metadata(requests.get(f"{upstream_idp.url}/saml/metadata/", timeout=10).content)
    config = {
        "strict": True,
        "sp": {
            "entityId": saml_sp_entity_id(SAML_SLUG),
            "assertionConsumerService": {"url": saml_acs_uri(SAML_SLUG)},
        },
        "idp": {
            "entityId": idp.entity_id,
            "singleSignOnService": {"url": idp.sso_url},
            "x509cert": certificate_bodies(idp.certificate)[0],
        },
    }
    request = {"https": "off", "http_host": BROKER_HOST, "path_info": "/", "get_data": {}}
    sso = OneLogin_Saml2_Auth({**request, "post_data": {}}, config).login(return_to="")
    _acs, fields = sign_in_upstream_saml(sso, "carol")
    return base64.b64decode(fields["SAMLResponse"])
