"""The SAML guides' snippets work against a live IdP (docs/snippets/, shown verbatim).

djangosaml2's settings are loaded as what djangosaml2 hands to pysaml2 (`SAML_CONFIG` is a
pysaml2 SP configuration): the SP reads our metadata from the live server, its own metadata
registers the app (`clients create --kind saml --saml-metadata`), and one SP-initiated sign-in
goes round. The node-saml snippet runs in Node with @node-saml/node-saml at the version the
guide pins, installed by npm into a temporary directory (skipped, saying so, when npm cannot).
"""

from __future__ import annotations

import base64
import html
import json
import re
import runpy
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from django.core.management import call_command

from tests.docs.conftest import DOCS_DIR, ROOT, SNIPPETS_DIR
from tests.saml.conftest import make_key_pair

with warnings.catch_warnings():
    # pysaml2 imports cryptography's CFB mode, deprecated there: a library's warning, not ours.
    warnings.simplefilter("ignore")
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor

pytestmark = [pytest.mark.django_db(transaction=True)]

NODE_SAML = "@node-saml/node-saml@5.1.0"  # the version docs/guides/saml-node.md pins
APP_URL = "https://app.example.com"
NODE = shutil.which("node")
NPM = shutil.which("npm")


@dataclass
class Answer:
    """What the IdP's auto-posting page sends to the app's ACS."""

    action: str
    saml_response: str
    relay_state: str


def saml_sign_in(url: str, base: str, username: str, password: str) -> Answer:
    """A person's browser (requests, cookies): follow `url` through our sign-in page to the page
    that posts the SAML Response to the app."""
    browser = requests.Session()
    for _ in range(10):
        response = browser.get(url, allow_redirects=False, timeout=30)
        if response.status_code in (302, 303):
            url = urljoin(url, response.headers["Location"])
            continue
        assert response.status_code == 200, response.text[:500]
        if "data-saml-post" in response.text:
            fields = dict(
                re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', response.text)
            )
            action = re.search(r'<form method="post" action="([^"]*)"', response.text)
            assert action, response.text[:500]
            return Answer(
                action=html.unescape(action[1]),
                saml_response=html.unescape(fields["SAMLResponse"]),
                relay_state=html.unescape(fields.get("RelayState", "")),
            )
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.text)
        assert token, response.text[:500]
        response = browser.post(
            url,
            data={"csrfmiddlewaretoken": token[1], "login": username, "password": password},
            headers={"Referer": url},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text[:300]
        url = urljoin(base, response.headers["Location"])
    raise AssertionError("redirect loop")


def register_saml_app(metadata_xml: str, tmp_path: Path, name: str) -> str:
    """The app registered as the guide says: from its own metadata. Returns its client id."""
    path = tmp_path / "sp-metadata.xml"
    path.write_text(metadata_xml)
    out = StringIO()
    call_command(
        "clients", "create", "--kind", "saml", "--name", name, "--saml-metadata", str(path),
        "--json", stdout=out,
    )  # fmt: skip
    return json.loads(out.getvalue())["client_id"]


def test_the_saml_guides_are_in_the_index():
    index = (DOCS_DIR / "README.md").read_text()
    for guide in ("saml-generic.md", "saml-django.md", "saml-node.md"):
        assert f"guides/{guide}" in index
        assert (DOCS_DIR / "guides" / guide).is_file()


# --- Django: djangosaml2 ------------------------------------------------------------------------


@pytest.fixture
def djangosaml2_settings(provider, tmp_path, monkeypatch) -> dict:
    keys = make_key_pair(tmp_path, "app")
    monkeypatch.setenv("COMPANY_IDP_ISSUER", provider)
    monkeypatch.setenv("APP_BASE_URL", APP_URL)
    monkeypatch.setenv("SAML_APP_KEY_FILE", keys.key_file)
    monkeypatch.setenv("SAML_APP_CERT_FILE", keys.cert_file)
    return runpy.run_path(str(SNIPPETS_DIR / "djangosaml2_settings.py"))


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4")
def test_djangosaml2_settings_sign_a_user_in(
    provider, djangosaml2_settings, user, password, tmp_path
):
    guide = djangosaml2_settings
    config = SPConfig()
    config.load(guide["SAML_CONFIG"])  # what djangosaml2's config loader does
    idp_entity_id = f"{provider}/saml/metadata/"
    assert list(config.metadata.keys()) == [idp_entity_id], "read from the live /saml/metadata/"
    register_saml_app(str(entity_descriptor(config)), tmp_path, "Wiki (djangosaml2)")

    sp = Saml2Client(config=config)
    request_id, info = sp.prepare_for_authenticate(
        entityid=idp_entity_id, relay_state="/wiki/", binding=BINDING_HTTP_REDIRECT
    )
    location = dict(info["headers"])["Location"]
    assert "Signature=" in location, "authn_requests_signed: the request is signed"
    answer = saml_sign_in(location, provider, "alice", password)

    assert answer.action == f"{APP_URL}/saml2/acs/"
    assert answer.relay_state == "/wiki/"
    result = sp.parse_authn_request_response(
        answer.saml_response, BINDING_HTTP_POST, outstanding={request_id: "/wiki/"}
    )
    assert result is not None
    assert result.name_id.text == "alice@example.com"
    # SAML_ATTRIBUTE_MAPPING's source attributes are the ones the IdP sends.
    identity = result.get_identity()
    for attribute in guide["SAML_ATTRIBUTE_MAPPING"]:
        if attribute == "email":
            assert identity[attribute] == ["alice@example.com"]
    assert guide["SAML_DJANGO_USER_MAIN_ATTRIBUTE"] in identity


# --- Node: node-saml ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def node_saml_dir(tmp_path_factory) -> Path:
    """A directory with @node-saml/node-saml installed, the snippet and its runner beside it."""
    if not (NODE and NPM):
        pytest.skip("node and npm are needed to run the node-saml snippet")
    directory = tmp_path_factory.mktemp("node-saml")
    (directory / "package.json").write_text('{"private": true, "type": "module"}\n')
    try:
        installed = subprocess.run(
            [NPM, "install", "--no-audit", "--no-fund", "--ignore-scripts", NODE_SAML],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm could not install {NODE_SAML} in 5 minutes")
    if installed.returncode != 0:
        pytest.skip(f"npm could not install {NODE_SAML}: {installed.stderr[-500:]}")
    shutil.copy(SNIPPETS_DIR / "node_saml.mjs", directory)
    shutil.copy(ROOT / "tests" / "docs" / "run_node_saml.mjs", directory)
    return directory


class NodeApp:
    """The snippet running in one Node process (node-saml keeps its request IDs in memory)."""

    def __init__(self, directory: Path, config: dict) -> None:
        assert NODE
        self.process = subprocess.Popen(
            [NODE, str(directory / "run_node_saml.mjs"), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.metadata = self._read()["metadata"]

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read() if self.process.stderr else "node exited"
        return json.loads(line)

    def ask(self, **message) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


@pytest.mark.spec("SAML 2.0 Profiles", "4.1.4.3")
def test_node_saml_snippet_signs_a_user_in(provider, node_saml_dir, user, password, tmp_path):
    keys = make_key_pair(tmp_path, "node-app")
    app = NodeApp(
        node_saml_dir,
        {
            "idpBaseUrl": provider,
            "appBaseUrl": APP_URL,
            "privateKey": Path(keys.key_file).read_text(),
            "certificate": keys.cert_pem,
        },
    )
    try:
        register_saml_app(app.metadata, tmp_path, "Wiki (node-saml)")
        url = app.ask(step="start", relayState="/home")["url"]
        assert url.startswith(f"{provider}/saml/sso/redirect/?SAMLRequest=")
        answer = saml_sign_in(url, provider, "alice", password)
        assert answer.action == f"{APP_URL}/saml/acs"
        body = {"SAMLResponse": answer.saml_response, "RelayState": answer.relay_state}

        person = app.ask(step="finish", body=body)
        assert person.get("error") is None, person
        assert person["person"]["nameID"] == "alice@example.com"
        assert person["person"]["email"] == "alice@example.com"
        assert person["person"]["relayState"] == "/home"

        # The same Response again: node-saml has used up its request ID and refuses it.
        assert "error" in app.ask(step="finish", body=body)
        # A Response to a fresh request whose signed assertion was altered is refused.
        url = app.ask(step="start", relayState="")["url"]
        xml = base64.b64decode(saml_sign_in(url, provider, "alice", password).saml_response)
        forged = xml.decode().replace("alice@example.com", "mallory@example.com")
        assert forged != xml.decode()
        refused = app.ask(
            step="finish", body={"SAMLResponse": base64.b64encode(forged.encode()).decode()}
        )
        assert "signature" in refused["error"].lower(), refused
    finally:
        app.close()
