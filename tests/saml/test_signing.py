"""Our XML signatures are made in the worker by libxmlsec1 (oauth_clients/saml/signing.py): no
xmlsec1 process per signature, and what comes out verifies with the xmlsec1 program against our
published certificate (a real verifier, not our own code). That apps accept them (assertions,
LogoutRequests, LogoutResponses, read by pysaml2's SP against /saml/metadata/) is the business
of every other test in this folder."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from saml2 import sigver
from saml2.saml import NameID
from saml2.sigver import SignatureError
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from oauth_clients.saml.idp import server_for
from oauth_clients.saml.keys import key_files
from oauth_clients.saml.signing import sign_xml
from tests.saml.conftest import NameIdFormat

LOGOUT_REQUEST = "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest"

pytestmark = pytest.mark.django_db


def signed_logout_request(saml_app) -> str:
    _id, message = server_for(saml_app).create_logout_request(
        destination="https://wiki.example.com/saml/slo",
        issuer_entity_id=saml_app.entity_id,
        name_id=NameID(format=NameIdFormat.EMAIL, text="alice@example.com"),
        sign=True,
        sign_alg=SIG_RSA_SHA256,
        digest_alg=DIGEST_SHA256,
    )
    return str(message)


def xmlsec1_verifies(xml: str, tmp_path) -> bool:
    document = tmp_path / "signed.xml"
    document.write_text(xml)
    ran = subprocess.run(
        [
            str(shutil.which("xmlsec1")),
            "--verify",
            "--pubkey-cert-pem",
            key_files().cert_file,
            "--id-attr:ID",
            LOGOUT_REQUEST,
            str(document),
        ],
        capture_output=True,
        check=False,
    )
    return ran.returncode == 0


def test_a_signature_is_made_in_the_worker_and_verifies_with_the_xmlsec1_program(
    saml_app, tmp_path, monkeypatch
):
    server_for(saml_app)  # built (and its xmlsec1 version asked) before the guard below

    def no_process(*args, **kwargs):
        raise AssertionError("pysaml2 started xmlsec1 to sign")

    monkeypatch.setattr(sigver, "Popen", no_process)
    xml = signed_logout_request(saml_app)
    monkeypatch.undo()

    assert "<ds:SignatureValue>" in xml or "SignatureValue>" in xml
    assert xmlsec1_verifies(xml, tmp_path)
    tampered = xml.replace("alice@example.com", "mallory@example.com")
    assert tampered != xml
    assert not xmlsec1_verifies(tampered, tmp_path)


def test_a_document_without_the_element_or_template_to_sign_is_refused(saml_app):
    xml = signed_logout_request(saml_app)
    files = key_files()
    with pytest.raises(SignatureError):
        sign_xml(xml, node_name=LOGOUT_REQUEST, key_file=files.key_file, node_id="_no-such-id")
    unsigned = '<a xmlns="urn:x" ID="_1"/>'
    with pytest.raises(SignatureError):
        sign_xml(unsigned, node_name="urn:x:a", key_file=files.key_file, node_id="_1")
    with pytest.raises(SignatureError):
        sign_xml("<not-closed", node_name="urn:x:a", key_file=files.key_file, node_id="_1")
