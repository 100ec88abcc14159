"""SAML service providers for the registry tests: pysaml2 acting as the SP writes the metadata
(with a key and certificate made here), and a loopback HTTP server publishes it."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SP_ENTITY_ID = "https://wiki.example.com/saml/metadata"
SP_ACS_URL = "https://wiki.example.com/saml/acs"
SP_SLO_URL = "https://wiki.example.com/saml/sls"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"


@dataclass(frozen=True)
class SpKeys:
    key_file: Path
    cert_file: Path
    cert_pem: str


def make_sp_keys(directory: Path, name: str = "wiki") -> SpKeys:
    """An RSA key and a self-signed certificate, as an SP would have."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.example.com")])
    now = dt.datetime.now(tz=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_file = directory / f"{name}.key"
    cert_file = directory / f"{name}.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    cert_file.write_text(cert_pem)
    return SpKeys(key_file=key_file, cert_file=cert_file, cert_pem=cert_pem)


def sp_metadata(
    keys: SpKeys,
    *,
    entity_id: str = SP_ENTITY_ID,
    acs_url: str = SP_ACS_URL,
    slo_url: str = SP_SLO_URL,
    authn_requests_signed: bool = True,
    name_id_format: str = NAMEID_PERSISTENT,
) -> bytes:
    """The SP's metadata as pysaml2 writes it (saml2.metadata.create_metadata_string)."""
    from saml2.config import SPConfig
    from saml2.metadata import create_metadata_string

    config = SPConfig()
    config.load(
        {
            "entityid": entity_id,
            "key_file": str(keys.key_file),
            "cert_file": str(keys.cert_file),
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(acs_url, BINDING_POST)],
                        "single_logout_service": [(slo_url, BINDING_REDIRECT)],
                    },
                    "authn_requests_signed": authn_requests_signed,
                    "want_assertions_signed": True,
                    "name_id_format": [name_id_format],
                }
            },
        }
    )
    document = create_metadata_string(None, config=config)
    return document if isinstance(document, bytes) else document.encode("utf-8")


def entity_body(document: bytes) -> str:
    """An EntityDescriptor without its XML declaration (to put several in an aggregate)."""
    text = document.decode("utf-8")
    if text.startswith("<?xml"):
        text = text.split("?>", 1)[1]
    return text.strip()


def aggregate(*documents: bytes) -> bytes:
    bodies = "".join(entity_body(document) for document in documents)
    return f'<md:EntitiesDescriptor xmlns:md="{MD_NS}">{bodies}</md:EntitiesDescriptor>'.encode()


IDP_ONLY_METADATA = f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="{MD_NS}" entityID="https://idp.example.org/metadata">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="{BINDING_REDIRECT}" Location="https://idp.example.org/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>""".encode()


@dataclass
class MetadataServer:
    """Publishes documents on 127.0.0.1 over plain http (loopback): path → (status, body,
    headers)."""

    pages: dict[str, tuple[int, bytes, dict[str, str]]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.requests.append(self.path)
                status, body, headers = server.pages.get(
                    self.path, (HTTPStatus.NOT_FOUND, b"not here", {})
                )
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/samlmetadata+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the IdP stopped reading (size cap)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def publish(self, path: str, body: bytes, status: int = HTTPStatus.OK, **headers: str) -> str:
        self.pages[path] = (status, body, headers)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
