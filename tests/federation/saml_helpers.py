"""The SAML side of the brokering tests: a person's browser at the upstream SAML IdP (a second
instance of this IdP, tests/federation/upstream_server.py), the auto-posted response carried
to our ACS, and responses made or changed by hand, signed by the upstream's own key (read from
its data directory) or by another one, with python-xmlsec."""

from __future__ import annotations

import base64
import datetime
import html
import re
import secrets
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pyotp
import requests
import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree

from tests.federation.upstream_server import TOTP_SECRET, UPSTREAM_PASSWORD

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def _csrf(text: str) -> str:
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text)
    assert token, text[:500]
    return token.group(1)


def _hidden(text: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', text)
    return html.unescape(found.group(1)) if found else ""


def sign_in_upstream_saml(
    sso_url: str, username: str, *, totp: bool = False
) -> tuple[str, dict[str, str]]:
    """The upstream's auto-post form after signing in: (ACS URL, {SAMLResponse, RelayState})."""
    browser = requests.Session()
    url = sso_url
    for _ in range(12):
        response = browser.get(url, allow_redirects=False, timeout=10)
        if response.status_code == HTTPStatus.OK and "SAMLResponse" in response.text:
            break
        if response.status_code == HTTPStatus.OK:
            if 'name="password"' in response.text:
                data = {"login": username, "password": UPSTREAM_PASSWORD}
            else:
                assert 'name="code"' in response.text, response.text[:800]
                assert totp, "the upstream asks for a one-time code"
                data = {"code": pyotp.TOTP(TOTP_SECRET).now()}
            response = browser.post(
                url,
                data={"csrfmiddlewaretoken": _csrf(response.text), **data},
                headers={"Referer": url},
                allow_redirects=False,
                timeout=10,
            )
        assert response.status_code == HTTPStatus.FOUND, response.text[:500]
        url = urljoin(url, response.headers["Location"])
    else:
        raise AssertionError("too many redirects at the upstream")
    action = re.search(
        r'<form[^>]+action="([^"]+)"[^>]*>(?:(?!</form>).)*?name="SAMLResponse"',
        response.text,
        re.DOTALL,
    )
    assert action, response.text[:800]
    fields = {"SAMLResponse": _hidden(response.text, "SAMLResponse")}
    relay = _hidden(response.text, "RelayState")
    if relay:
        fields["RelayState"] = relay
    return html.unescape(action.group(1)), fields


def path_of(url: str) -> str:
    return urlsplit(url).path


def decode(fields: dict[str, str]) -> etree._Element:
    return etree.fromstring(base64.b64decode(fields["SAMLResponse"]))


def encode(root: etree._Element | bytes) -> str:
    raw = root if isinstance(root, bytes) else etree.tostring(root)
    return base64.b64encode(raw).decode("ascii")


def upstream_key(data_dir: Path) -> bytes:
    """The upstream IdP's signing key (the newest RSA key of its data directory)."""
    keys = sorted(
        (p for p in data_dir.rglob("*.pem") if not p.name.startswith("next-")),
        key=lambda p: p.stat().st_mtime,
    )
    for path in reversed(keys):
        text = path.read_bytes()
        if b"PRIVATE KEY" in text:
            key = serialization.load_pem_private_key(text, password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                return text
    raise AssertionError(f"no RSA key under {data_dir}")


def other_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def strip_signatures(root: etree._Element) -> None:
    for signature in root.findall(".//ds:Signature", NS):
        signature.getparent().remove(signature)


def sign_assertion(root: etree._Element, key_pem: bytes, *, sha1: bool = False) -> etree._Element:
    """The response's assertion (re-)signed with `key_pem`: enveloped, exclusive C14N,
    RSA-SHA256, its signature after the Issuer (SAML 2.0 Core §5.4.1)."""
    strip_signatures(root)
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    xmlsec.tree.add_ids(assertion, ["ID"])
    method = xmlsec.constants.TransformRsaSha1 if sha1 else xmlsec.constants.TransformRsaSha256
    signature = xmlsec.template.create(assertion, xmlsec.constants.TransformExclC14N, method)
    assertion.insert(1, signature)
    reference = xmlsec.template.add_reference(
        signature,
        xmlsec.constants.TransformSha1 if sha1 else xmlsec.constants.TransformSha256,
        uri="#" + assertion.get("ID"),
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    context.sign(signature)
    return root


def certificate_for(key_pem: bytes) -> str:
    """A self-signed certificate of `key_pem` (PEM), as a provider would publish."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "other")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[union-attr]
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _instant(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def forge(
    genuine: bytes,
    *,
    request_id: str | None,
    key: bytes,
    change: Callable[[etree._Element], None] | None = None,
    sha1: bool = False,
) -> dict[str, str]:
    """A response made from one the upstream really issued: new IDs and times, answering
    `request_id` (none: unsolicited), changed by `change`, its assertion signed with `key`."""
    root = etree.fromstring(genuine)
    now = datetime.datetime.now(datetime.UTC)
    later = _instant(now + datetime.timedelta(minutes=5))
    root.set("ID", "_" + secrets.token_hex(16))
    root.set("IssueInstant", _instant(now))
    assertion = root.find("saml:Assertion", NS)
    assert assertion is not None
    assertion.set("ID", "_" + secrets.token_hex(16))
    assertion.set("IssueInstant", _instant(now))
    conditions = assertion.find("saml:Conditions", NS)
    assert conditions is not None
    conditions.set("NotBefore", _instant(now - datetime.timedelta(minutes=1)))
    conditions.set("NotOnOrAfter", later)
    data = assertion.find(".//saml:SubjectConfirmationData", NS)
    assert data is not None
    data.set("NotOnOrAfter", later)
    for element in (root, data):
        if request_id:
            element.set("InResponseTo", request_id)
        elif "InResponseTo" in element.attrib:
            del element.attrib["InResponseTo"]
    if change is not None:
        change(root)
    sign_assertion(root, key, sha1=sha1)
    return {"SAMLResponse": encode(root)}
