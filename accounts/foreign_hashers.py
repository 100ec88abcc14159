"""Password hashers for imported hashes: bcrypt as other systems check it, and PBKDF2 and
scrypt with a binary salt, which no Django hasher reads.

bcrypt only ever reads the first 72 bytes of a password; PHP, Node, Go and OpenBSD cut longer
ones silently, and bcrypt 5 (the Python package) refuses them with a ValueError, so Django's
`BCryptPasswordHasher` would answer a long password with a 500 instead of "wrong password".
`BCryptPasswordHasher` here is Django's with the same 72-byte cut as the systems that made the
hashes.

Django's PBKDF2 and scrypt hashers take their salt as text and hash `salt.encode()`; other
systems (Keycloak, passlib's and PHC strings) salt with random bytes, which no text encodes
back to, and Django has no PBKDF2-HMAC-SHA512 at all. These two hashers keep the salt and the
hash as base64 and verify with the standard library's `hashlib.pbkdf2_hmac` and
`hashlib.scrypt`. They are never the preferred hasher: a successful sign-in re-hashes the
password with the first of PASSWORD_HASHERS (Argon2id, accounts/hashers.py), as Django does for
any hasher that is not the preferred one. `accounts.imports` writes these strings.

    pbkdf2_bytes$<sha1|sha256|sha512>$<iterations>$<salt, base64>$<hash, base64>
    scrypt_bytes$<N>$<r>$<p>$<salt, base64>$<hash, base64>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import Any

import bcrypt
from django.contrib.auth.hashers import BasePasswordHasher, mask_hash
from django.contrib.auth.hashers import BCryptPasswordHasher as DjangoBCryptPasswordHasher
from django.utils.crypto import constant_time_compare

PBKDF2_DIGESTS = ("sha1", "sha256", "sha512")
# Bounds on what an imported hash may ask of a sign-in: a hash outside them is refused at import
# (accounts.imports) rather than letting one row cost seconds of CPU or gigabytes at every try.
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_SCRYPT_MEMORY = 256 * 1024 * 1024  # 128 * N * r * p bytes


def b64decode(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not; also passlib's "adapted" alphabet ('.' for
    '+'). ValueError when it is not base64."""
    cleaned = text.strip().replace(".", "+").replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except binascii.Error as error:
        raise ValueError("not base64") from error


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def scrypt_memory(*, n: int, r: int, p: int) -> int:
    return 128 * n * r * p


# bcrypt's own limit: bytes of the password beyond it never counted.
BCRYPT_MAX_PASSWORD_BYTES = 72


class BCryptPasswordHasher(DjangoBCryptPasswordHasher):
    """Django's bcrypt hasher (algorithm "bcrypt", plain bcrypt of the password) reading only
    the 72 bytes bcrypt reads (see the module docstring)."""

    def encode(self, password: str, salt: Any) -> str:
        # `salt` is bytes here (Django's bcrypt hashers pass the stored hash's first 29 bytes).
        data = bcrypt.hashpw(password.encode()[:BCRYPT_MAX_PASSWORD_BYTES], salt)
        return f"{self.algorithm}${data.decode('ascii')}"


class PBKDF2BytesPasswordHasher(BasePasswordHasher):
    """PBKDF2-HMAC (SHA-1, SHA-256 or SHA-512) with a binary salt and any key length."""

    algorithm = "pbkdf2_bytes"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, digest, iterations, salt, hash = encoded.split("$", 4)
        assert algorithm == self.algorithm
        if digest not in PBKDF2_DIGESTS:
            raise ValueError(f"unknown PBKDF2 digest {digest!r}")
        return {
            "algorithm": algorithm,
            "digest": digest,
            "iterations": int(iterations),
            "salt": b64decode(salt),
            "hash": b64decode(hash),
        }

    def encode(  # type: ignore[override]
        self, password: str, salt: str | bytes, iterations: int = 600_000, digest: str = "sha256"
    ) -> str:
        salt_bytes = salt.encode() if isinstance(salt, str) else salt
        derived = hashlib.pbkdf2_hmac(digest, password.encode(), salt_bytes, iterations)
        return self.compose(digest=digest, iterations=iterations, salt=salt_bytes, hash=derived)

    def compose(self, *, digest: str, iterations: int, salt: bytes, hash: bytes) -> str:
        return "$".join([self.algorithm, digest, str(iterations), b64encode(salt), b64encode(hash)])

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        derived = hashlib.pbkdf2_hmac(
            decoded["digest"],
            password.encode(),
            decoded["salt"],
            decoded["iterations"],
            dklen=len(decoded["hash"]),
        )
        return constant_time_compare(derived, decoded["hash"])

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        # The keys are Django's own (its admin translates them with Django's catalogue).
        decoded = self.decode(encoded)
        return {
            "algorithm": f"{self.algorithm} ({decoded['digest']})",
            "iterations": decoded["iterations"],
            "salt": mask_hash(b64encode(decoded["salt"])),
            "hash": mask_hash(b64encode(decoded["hash"])),
        }

    def harden_runtime(self, password: str, encoded: str) -> None:
        # Never the preferred hasher, so Django never asks (see the module docstring).
        pass


class ScryptBytesPasswordHasher(BasePasswordHasher):
    """scrypt with a binary salt and any key length."""

    algorithm = "scrypt_bytes"

    def decode(self, encoded: str) -> dict[str, Any]:
        algorithm, n, r, p, salt, hash = encoded.split("$", 5)
        assert algorithm == self.algorithm
        return {
            "algorithm": algorithm,
            "n": int(n),
            "r": int(r),
            "p": int(p),
            "salt": b64decode(salt),
            "hash": b64decode(hash),
        }

    def encode(  # type: ignore[override]
        self, password: str, salt: str | bytes, n: int = 2**14, r: int = 8, p: int = 1
    ) -> str:
        salt_bytes = salt.encode() if isinstance(salt, str) else salt
        derived = hashlib.scrypt(
            password.encode(),
            salt=salt_bytes,
            n=n,
            r=r,
            p=p,
            maxmem=scrypt_memory(n=n, r=r, p=p) + 1024 * 1024,
            dklen=64,
        )
        return self.compose(n=n, r=r, p=p, salt=salt_bytes, hash=derived)

    def compose(self, *, n: int, r: int, p: int, salt: bytes, hash: bytes) -> str:
        return "$".join([self.algorithm, str(n), str(r), str(p), b64encode(salt), b64encode(hash)])

    def verify(self, password: str, encoded: str) -> bool:
        decoded = self.decode(encoded)
        n, r, p = decoded["n"], decoded["r"], decoded["p"]
        derived = hashlib.scrypt(
            password.encode(),
            salt=decoded["salt"],
            n=n,
            r=r,
            p=p,
            maxmem=scrypt_memory(n=n, r=r, p=p) + 1024 * 1024,
            dklen=len(decoded["hash"]),
        )
        return constant_time_compare(derived, decoded["hash"])

    def safe_summary(self, encoded: str) -> dict[Any, Any]:
        decoded = self.decode(encoded)
        return {
            "algorithm": self.algorithm,
            "work factor": int(math.log2(decoded["n"])) if decoded["n"] > 0 else 0,
            "block size": decoded["r"],
            "parallelism": decoded["p"],
            "salt": mask_hash(b64encode(decoded["salt"])),
            "hash": mask_hash(b64encode(decoded["hash"])),
        }

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass
