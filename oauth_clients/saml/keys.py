"""The SAML signing certificates: one self-signed X.509 certificate per published RSA key.

SAML metadata carries keys as X.509 certificates (SAML 2.0 Metadata §2.4.1.1, `KeyDescriptor`
with `ds:X509Certificate`), so each RSA key of `oauth_clients.keys` (the OIDC signing keys,
rotated the same way) gets one. The certificate is a pure function of the key, so every process
and every restart publishes the same bytes for the same key, with nothing stored:

- subject and issuer: `CN=SAML signing <kid>` (the key's RFC 7638 thumbprint, as in JWKS);
- serial number: the first 16 bytes of SHA-256 over the public key (DER), positive;
- validity: 2000-01-01 to 9999-12-31 23:59:59 UTC, RFC 5280 §4.1.2.5's "no well-defined
  expiration" (SAML trusts the key in metadata, not a validity period: the key's life is the
  rotation's, `manage.py rotate_signing_key`);
- signature: RSA PKCS#1 v1.5 with SHA-256 by the key itself, which is deterministic.

The current RSA key alone signs assertions; metadata publishes it, the staged next key and every
previous key still published (`oauth_clients.keys`, `rotate_signing_key --stage/--activate`):
an SP that refreshed our metadata while the next key was staged already trusts it when it
starts signing, and keeps trusting the previous one until it is retired. The keys are asked of
`oauth_clients/key_store.py` on every use, so with the database key store a rotation reaches
metadata and assertions within seconds, without restart (files are written per kid).

xmlsec1 (pysaml2's signing backend) reads the key and certificate from files: they are written
to a private temporary directory of this process (0700, files 0600), never into the repository
or the database, and removed when the process exits.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import functools
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from oauth_clients.key_store import published_pems
from oauth_clients.keys import RS256, key_algorithm, key_id

NOT_BEFORE = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def rsa_pems() -> list[str]:
    """The published RSA keys (PEM): the signing key first, then the next, then the previous."""
    return [pem for pem in published_pems() if key_algorithm(pem) == RS256]


@functools.lru_cache(maxsize=16)
def certificate_pem(private_pem: str) -> str:
    """The self-signed certificate of an RSA key (PEM), the same for the same key every time."""
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SAML signing certificates are made for RSA keys only")
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    serial = int.from_bytes(hashlib.sha256(public_der).digest()[:16], "big") >> 1 or 1
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"SAML signing {key_id(private_pem)}")]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate_base64(certificate: str) -> str:
    """A PEM certificate as metadata's `ds:X509Certificate` text (base64 of the DER)."""
    loaded = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    return base64.b64encode(loaded.public_bytes(serialization.Encoding.DER)).decode("ascii")


@dataclass(frozen=True)
class KeyFiles:
    """Paths xmlsec1 reads: the signing key and its certificate, the other published
    certificates (metadata lists them all)."""

    key_file: str
    cert_file: str
    other_cert_files: tuple[str, ...]
    fingerprint: str  # changes with the published key set


_lock = threading.RLock()
_directories: dict[int, Path] = {}


def _remove(path: Path, pid: int) -> None:
    # A forked child inherits the parent's exit handlers: only the owner removes its files.
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


def private_directory() -> Path:
    """This process's private directory for key files (created 0700 by `mkdtemp`)."""
    pid = os.getpid()
    with _lock:
        path = _directories.get(pid)
        if path is None or not path.is_dir():
            path = Path(tempfile.mkdtemp(prefix="idp-saml-"))
            _directories[pid] = path
            atexit.register(_remove, path, pid)
        return path


def _write_private(path: Path, text: str) -> None:
    if path.exists():
        return
    # Written under `_lock`, so no thread of this process reads a half-written file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def key_files() -> KeyFiles:
    """The files of the current key set, written on first use in this process."""
    pems = rsa_pems()
    if not pems:
        raise ValueError("No RSA signing key is configured")
    cert_paths = []
    with _lock:
        directory = private_directory()
        for pem in pems:
            name = key_id(pem)
            _write_private(directory / f"{name}.key.pem", pem)
            cert_path = directory / f"{name}.crt.pem"
            _write_private(cert_path, certificate_pem(pem))
            cert_paths.append(str(cert_path))
    fingerprint = hashlib.sha256("\n".join(key_id(pem) for pem in pems).encode()).hexdigest()
    return KeyFiles(
        key_file=str(directory / f"{key_id(pems[0])}.key.pem"),
        cert_file=cert_paths[0],
        other_cert_files=tuple(cert_paths[1:]),
        fingerprint=fingerprint[:32],
    )
