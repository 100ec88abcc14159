"""Password hashes from other systems, read and re-written as Django's encoded hashes.

`to_django_hash(text)` takes a hash as another system stored it and returns the string Django
keeps in `User.password`, for a hasher of PASSWORD_HASHERS that verifies it (the import never
re-hashes: it has no passwords). `keycloak_to_django_hash` does the same for a Keycloak
credential (`secretData` and `credentialData`). A malformed hash, an unknown format or
parameters that would make every sign-in attempt expensive raise `HashFormatError` with the
reason. Accepted:

- bcrypt `$2a$`, `$2b$`, `$2y$` (PHP, Node, Go, Ruby) → `bcrypt$…` (accounts.hashers'
  `BCryptPasswordHasher`, Django's with a 72-byte cut the source systems also made);
- Argon2 PHC strings `$argon2id$`, `$argon2i$`, `$argon2d$` → `argon2$…` (Django's hasher reads
  any Argon2 parameters; ours re-hashes with its own at the next sign-in);
- PBKDF2 as PHC/passlib strings `$pbkdf2-sha256$…`, `$pbkdf2-sha512$…`, `$pbkdf2$…` (SHA-1) and
  Keycloak's pbkdf2/pbkdf2-sha256/pbkdf2-sha512 → `pbkdf2_bytes$…` (accounts.foreign_hashers:
  their salts are bytes, Django's PBKDF2 hasher takes text);
- scrypt PHC/passlib strings `$scrypt$ln=…,r=…,p=…$…` → `scrypt_bytes$…` (same reason);
- Django's own encoded hashes (`pbkdf2_sha256$`, `pbkdf2_sha1$`, `argon2$`, `bcrypt$`,
  `bcrypt_sha256$`, `scrypt$`), kept as they are once checked.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import argon2

from accounts.foreign_hashers import (
    MAX_PBKDF2_ITERATIONS,
    MAX_SCRYPT_MEMORY,
    PBKDF2BytesPasswordHasher,
    ScryptBytesPasswordHasher,
    b64decode,
    scrypt_memory,
)

# bcrypt: version, cost, then 53 characters of bcrypt's own base64 (22 salt, 31 checksum).
_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}\Z")
MAX_BCRYPT_COST = 16
# Argon2: memory in KiB, passes, lanes a sign-in may be asked for.
MAX_ARGON2_MEMORY_KIB = 256 * 1024
MAX_ARGON2_TIME_COST = 64
MAX_ARGON2_PARALLELISM = 16
_PBKDF2_PHC_DIGESTS = {"pbkdf2": "sha1", "pbkdf2-sha1": "sha1", "pbkdf2-sha256": "sha256"}
_PBKDF2_PHC_DIGESTS["pbkdf2-sha512"] = "sha512"
_DIGEST_SIZES = {"sha1": 20, "sha256": 32, "sha512": 64}
_KEYCLOAK_PBKDF2 = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}
_KEYCLOAK_ARGON2_TYPES = {"id": "argon2id", "i": "argon2i", "d": "argon2d"}
_KEYCLOAK_ARGON2_VERSIONS = {"1.3": 19, "1.0": 16}


# `User.password` holds at most 128 characters (Django's AbstractBaseUser).
MAX_ENCODED_LENGTH = 128
# PBKDF2 and scrypt are stored with the first 32 bytes of their derived key: both end in PBKDF2,
# whose output is a concatenation of independent blocks, so a prefix of it is exactly the
# output for that shorter length (RFC 8018 §5.2; RFC 7914 §6). 256 bits lose nothing, and
# Keycloak's 512-bit keys would not fit in the column otherwise.
STORED_KEY_BYTES = 32
MAX_SALT_BYTES = 48


class HashFormatError(ValueError):
    """The reason a hash cannot be imported (shown in the import's report, which is for the
    operator at the command line: English, like the other commands' output)."""


def _fits(encoded: str) -> str:
    if len(encoded) > MAX_ENCODED_LENGTH:
        raise HashFormatError(
            f"hash too long to store ({len(encoded)} characters, at most {MAX_ENCODED_LENGTH})"
        )
    return encoded


def to_django_hash(text: str) -> str:
    """The Django-encoded hash for a hash in one of the formats above, or HashFormatError."""
    return _fits(_to_django_hash(text))


def _to_django_hash(text: str) -> str:
    value = text.strip()
    if not value:
        raise HashFormatError("empty password hash")
    if value.startswith("$2"):
        return _bcrypt(value)
    if value.startswith("$argon2"):
        return _argon2(value)
    if value.startswith("$pbkdf2"):
        return _pbkdf2_phc(value)
    if value.startswith("$scrypt$"):
        return _scrypt_phc(value)
    algorithm = value.split("$", 1)[0]
    django_formats = {
        "pbkdf2_sha256": _django_pbkdf2,
        "pbkdf2_sha1": _django_pbkdf2,
        "argon2": _django_argon2,
        "bcrypt": _django_bcrypt,
        "bcrypt_sha256": _django_bcrypt,
        "scrypt": _django_scrypt,
        PBKDF2BytesPasswordHasher.algorithm: _own_pbkdf2,
        ScryptBytesPasswordHasher.algorithm: _own_scrypt,
    }
    if algorithm in django_formats and "$" in value:
        return django_formats[algorithm](value)
    raise HashFormatError("unknown password hash format")


def _bcrypt(value: str) -> str:
    match = _BCRYPT.match(value)
    if match is None:
        raise HashFormatError("malformed bcrypt hash")
    cost = int(match.group(1))
    if not 4 <= cost <= MAX_BCRYPT_COST:
        raise HashFormatError(f"bcrypt cost {cost} is outside 4-{MAX_BCRYPT_COST}")
    return f"bcrypt${value}"


def _argon2(value: str) -> str:
    try:
        parameters = argon2.extract_parameters(value)
        parts = value.split("$")
        b64decode(parts[-1])
        b64decode(parts[-2])
    except (argon2.exceptions.InvalidHashError, ValueError, IndexError) as error:
        raise HashFormatError("malformed Argon2 hash") from error
    if (
        parameters.memory_cost > MAX_ARGON2_MEMORY_KIB
        or parameters.time_cost > MAX_ARGON2_TIME_COST
        or parameters.parallelism > MAX_ARGON2_PARALLELISM
    ):
        raise HashFormatError("Argon2 parameters too costly for a sign-in")
    return f"argon2{value}"


def _checked_pbkdf2(*, digest: str, iterations: int, salt: bytes, hash: bytes) -> str:
    if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise HashFormatError(f"PBKDF2 iterations outside 1-{MAX_PBKDF2_ITERATIONS}")
    if not 1 <= len(salt) <= MAX_SALT_BYTES or not 16 <= len(hash) <= 128:
        raise HashFormatError("malformed PBKDF2 hash")
    return PBKDF2BytesPasswordHasher().compose(
        digest=digest, iterations=iterations, salt=salt, hash=hash[:STORED_KEY_BYTES]
    )


def _pbkdf2_phc(value: str) -> str:
    """passlib's `$pbkdf2-sha256$29000$salt$hash` and PHC's `$pbkdf2-sha256$i=29000,l=32$…`."""
    parts = value.split("$")
    try:
        _empty, scheme, parameters, salt, hash = parts
        digest = _PBKDF2_PHC_DIGESTS[scheme]
        if parameters.isdigit():
            iterations = int(parameters)
        else:
            fields = dict(item.split("=", 1) for item in parameters.split(","))
            iterations = int(fields["i"])
        return _checked_pbkdf2(
            digest=digest, iterations=iterations, salt=b64decode(salt), hash=b64decode(hash)
        )
    except HashFormatError:
        raise
    except (ValueError, KeyError) as error:
        raise HashFormatError("malformed PBKDF2 hash") from error


def _checked_scrypt(*, n: int, r: int, p: int, salt: bytes, hash: bytes) -> str:
    if n < 2 or n & (n - 1) or r < 1 or p < 1 or len(hash) < 16:
        raise HashFormatError("malformed scrypt hash")
    if not 1 <= len(salt) <= MAX_SALT_BYTES:
        raise HashFormatError("malformed scrypt hash")
    if scrypt_memory(n=n, r=r, p=p) > MAX_SCRYPT_MEMORY:
        raise HashFormatError("scrypt parameters too costly for a sign-in")
    return ScryptBytesPasswordHasher().compose(
        n=n, r=r, p=p, salt=salt, hash=hash[:STORED_KEY_BYTES]
    )


def _scrypt_phc(value: str) -> str:
    """passlib's and PHC's `$scrypt$ln=16,r=8,p=1$salt$hash` (N = 2**ln)."""
    try:
        _empty, _scheme, parameters, salt, hash = value.split("$")
        fields = {
            key: int(number) for key, number in (i.split("=", 1) for i in parameters.split(","))
        }
        n = 2 ** fields["ln"] if "ln" in fields else fields["n"]
        if "ln" in fields and not 1 <= fields["ln"] <= 30:
            raise ValueError("ln")
        return _checked_scrypt(
            n=n, r=fields["r"], p=fields["p"], salt=b64decode(salt), hash=b64decode(hash)
        )
    except HashFormatError:
        raise
    except (ValueError, KeyError) as error:
        raise HashFormatError("malformed scrypt hash") from error


def _django_pbkdf2(value: str) -> str:
    try:
        algorithm, iterations, salt, hash = value.split("$")
        size = _DIGEST_SIZES["sha1" if algorithm == "pbkdf2_sha1" else "sha256"]
        if not salt or len(b64decode(hash)) != size or not iterations.isdigit():
            raise ValueError("shape")
    except ValueError as error:
        raise HashFormatError("malformed PBKDF2 hash") from error
    if not 1 <= int(iterations) <= MAX_PBKDF2_ITERATIONS:
        raise HashFormatError(f"PBKDF2 iterations outside 1-{MAX_PBKDF2_ITERATIONS}")
    return value


def _django_argon2(value: str) -> str:
    return _argon2(value[len("argon2") :])


def _django_bcrypt(value: str) -> str:
    _algorithm, rest = value.split("$", 1)
    _bcrypt(rest)
    return value


def _django_scrypt(value: str) -> str:
    try:
        _algorithm, n, salt, r, p, hash = value.split("$")
        if not salt:
            raise ValueError("salt")
        _checked_scrypt(n=int(n), r=int(r), p=int(p), salt=salt.encode(), hash=b64decode(hash))
    except HashFormatError:
        raise
    except ValueError as error:
        raise HashFormatError("malformed scrypt hash") from error
    return value


def _own_pbkdf2(value: str) -> str:
    try:
        decoded = PBKDF2BytesPasswordHasher().decode(value)
    except (ValueError, AssertionError) as error:
        raise HashFormatError("malformed PBKDF2 hash") from error
    return _checked_pbkdf2(
        digest=decoded["digest"],
        iterations=decoded["iterations"],
        salt=decoded["salt"],
        hash=decoded["hash"],
    )


def _own_scrypt(value: str) -> str:
    try:
        decoded = ScryptBytesPasswordHasher().decode(value)
    except (ValueError, AssertionError) as error:
        raise HashFormatError("malformed scrypt hash") from error
    return _checked_scrypt(
        n=decoded["n"], r=decoded["r"], p=decoded["p"], salt=decoded["salt"], hash=decoded["hash"]
    )


# --- Keycloak -----------------------------------------------------------------------------------


def _json_object(data: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if not isinstance(data, str):
        raise HashFormatError("malformed Keycloak credential")
    try:
        loaded = json.loads(data)
    except ValueError as error:
        raise HashFormatError("malformed Keycloak credential") from error
    if not isinstance(loaded, dict):
        raise HashFormatError("malformed Keycloak credential")
    return loaded


def _parameter(parameters: dict[str, Any], key: str, default: str) -> str:
    # Keycloak keeps each additional parameter as a list of strings (a MultivaluedHashMap).
    value = parameters.get(key, default)
    if isinstance(value, list):
        value = value[0] if value else default
    return str(value)


def keycloak_to_django_hash(
    *, secret_data: str | dict[str, Any] | None, credential_data: str | dict[str, Any] | None
) -> str:
    """A Keycloak password credential as a Django-encoded hash (see `_keycloak_hash`)."""
    return _fits(_keycloak_hash(secret_data=secret_data, credential_data=credential_data))


def _keycloak_hash(
    *, secret_data: str | dict[str, Any] | None, credential_data: str | dict[str, Any] | None
) -> str:
    """A Keycloak password credential (realm export `users[].credentials[]`, type "password")
    as a Django-encoded hash. Keycloak stores the hash and salt in base64 in `secretData` and
    the algorithm and its parameters in `credentialData`."""
    secret = _json_object(secret_data)
    credential = _json_object(credential_data)
    algorithm = str(credential.get("algorithm", ""))
    try:
        hash = b64decode(str(secret["value"]))
        salt = b64decode(str(secret["salt"]))
        iterations = int(credential["hashIterations"])
    except (KeyError, ValueError, TypeError) as error:
        raise HashFormatError("malformed Keycloak credential") from error
    if algorithm in _KEYCLOAK_PBKDF2:
        return _checked_pbkdf2(
            digest=_KEYCLOAK_PBKDF2[algorithm], iterations=iterations, salt=salt, hash=hash
        )
    if algorithm == "argon2":
        parameters = credential.get("additionalParameters") or {}
        try:
            variant = _KEYCLOAK_ARGON2_TYPES[_parameter(parameters, "type", "id")]
            version = _KEYCLOAK_ARGON2_VERSIONS[_parameter(parameters, "version", "1.3")]
            memory = int(_parameter(parameters, "memory", "7168"))
            parallelism = int(_parameter(parameters, "parallelism", "1"))
        except (KeyError, ValueError) as error:
            raise HashFormatError("malformed Keycloak credential") from error
        phc = "$".join(
            [
                "",
                variant,
                f"v={version}",
                f"m={memory},t={iterations},p={parallelism}",
                _phc_b64(salt),
                _phc_b64(hash),
            ]
        )
        return _argon2(phc)
    raise HashFormatError(f"unsupported Keycloak password algorithm {algorithm!r}")


def _phc_b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")
