"""Signing keys for ID tokens: read from env or a key directory; dev generates one on first start.

Imported by settings, so it must not touch Django models. Layout of the key directory:
`<unix-time>.pem` files, RSA private keys (PKCS#8 PEM, file mode 0600). The newest signs; older
ones stay published in JWKS (so tokens they signed still verify) until removed by rotation.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def generate_rsa_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def write_new_key(key_dir: Path) -> Path:
    """Write a fresh key that becomes the active (newest) one; returns its path."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.time_ns()
    path = key_dir / f"{stamp}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_rsa_private_key_pem())
    return path


def key_files(key_dir: Path) -> list[Path]:
    """Key files, newest first."""
    if not key_dir.is_dir():
        return []
    return sorted(
        key_dir.glob("*.pem"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0, reverse=True
    )


def read_signing_keys(*, key_dir: Path, env_pem: str = "", generate: bool = False) -> list[str]:
    """PEM strings, active key first. `env_pem` (from the environment) wins as the active key."""
    if generate and not env_pem and not key_files(key_dir):
        write_new_key(key_dir)
    pems = [p.read_text() for p in key_files(key_dir)]
    if env_pem:
        pems = [env_pem.replace("\\n", "\n"), *[p for p in pems if p.strip() != env_pem.strip()]]
    return pems
