"""Password hashes of other systems read as Django hashes that verify them
(accounts/hash_formats.py, accounts/foreign_hashers.py), and the malformed ones refused."""

from __future__ import annotations

import base64
import hashlib
import json

import argon2
import bcrypt
import pytest
from django.contrib.auth.hashers import check_password, identify_hasher

from accounts.hash_formats import HashFormatError, keycloak_to_django_hash, to_django_hash

PASSWORD = "legacy-password-1"
SALT = bytes(range(16))


def b64(data: bytes, *, pad: bool = True) -> str:
    text = base64.b64encode(data).decode()
    return text if pad else text.rstrip("=")


def ab64(data: bytes) -> str:
    """passlib's adapted base64: '.' for '+', no padding."""
    return b64(data, pad=False).replace("+", ".")


def bcrypt_hash(prefix: str) -> str:
    made = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    return prefix + made[4:]


def pbkdf2(digest: str, iterations: int = 1000, dklen: int | None = None) -> bytes:
    return hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), SALT, iterations, dklen=dklen)


def scrypt_hash(ln: int = 10) -> str:
    derived = hashlib.scrypt(PASSWORD.encode(), salt=SALT, n=2**ln, r=8, p=1, dklen=32)
    return f"$scrypt$ln={ln},r=8,p=1${ab64(SALT)}${ab64(derived)}"


def argon2_hash(kind: argon2.Type) -> str:
    return argon2.PasswordHasher(time_cost=1, memory_cost=256, parallelism=1, type=kind).hash(
        PASSWORD
    )


FOREIGN_HASHES = {
    "bcrypt $2b$": lambda: bcrypt_hash("$2b$"),
    "bcrypt $2a$": lambda: bcrypt_hash("$2a$"),
    "bcrypt $2y$ (PHP)": lambda: bcrypt_hash("$2y$"),
    "argon2id": lambda: argon2_hash(argon2.Type.ID),
    "argon2i": lambda: argon2_hash(argon2.Type.I),
    "pbkdf2-sha256 (passlib)": lambda: f"$pbkdf2-sha256$1000${ab64(SALT)}${ab64(pbkdf2('sha256'))}",
    "pbkdf2-sha512 (passlib)": lambda: f"$pbkdf2-sha512$1000${ab64(SALT)}${ab64(pbkdf2('sha512'))}",
    "pbkdf2 sha1 (passlib)": lambda: f"$pbkdf2$1000${ab64(SALT)}${ab64(pbkdf2('sha1'))}",
    "pbkdf2-sha256 (PHC i=,l=)": lambda: (
        f"$pbkdf2-sha256$i=1000,l=32${b64(SALT, pad=False)}${b64(pbkdf2('sha256'), pad=False)}"
    ),
    "scrypt (PHC ln=)": scrypt_hash,
    "Django pbkdf2_sha256": lambda: (
        "pbkdf2_sha256$1000$saltsalt$"
        + b64(hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), b"saltsalt", 1000))
    ),
}


@pytest.mark.parametrize("made", FOREIGN_HASHES.values(), ids=FOREIGN_HASHES.keys())
def test_a_foreign_hash_becomes_a_django_hash_that_checks_the_old_password(made):
    encoded = to_django_hash(made())

    identify_hasher(encoded)  # a hasher of PASSWORD_HASHERS reads it
    assert check_password(PASSWORD, encoded)
    assert not check_password(PASSWORD + "x", encoded)


def keycloak_pbkdf2(algorithm: str, digest: str, dklen: int) -> dict:
    return {
        "type": "password",
        "secretData": json.dumps(
            {
                "value": b64(pbkdf2(digest, 27500, dklen)),
                "salt": b64(SALT),
                "additionalParameters": {},
            }
        ),
        "credentialData": json.dumps(
            {"hashIterations": 27500, "algorithm": algorithm, "additionalParameters": {}}
        ),
    }


def keycloak_argon2() -> dict:
    raw = argon2.low_level.hash_secret_raw(
        PASSWORD.encode(),
        SALT,
        time_cost=3,
        memory_cost=1024,
        parallelism=1,
        hash_len=32,
        type=argon2.Type.ID,
        version=19,
    )
    parameters = {
        "hashLength": ["32"],
        "memory": ["1024"],
        "type": ["id"],
        "version": ["1.3"],
        "parallelism": ["1"],
    }
    return {
        "type": "password",
        "secretData": json.dumps(
            {"value": b64(raw), "salt": b64(SALT), "additionalParameters": {}}
        ),
        "credentialData": json.dumps(
            {"hashIterations": 3, "algorithm": "argon2", "additionalParameters": parameters}
        ),
    }


KEYCLOAK_CREDENTIALS = {
    "pbkdf2 (sha1, 512-bit key)": lambda: keycloak_pbkdf2("pbkdf2", "sha1", 64),
    "pbkdf2-sha256 (512-bit key)": lambda: keycloak_pbkdf2("pbkdf2-sha256", "sha256", 64),
    "pbkdf2-sha512": lambda: keycloak_pbkdf2("pbkdf2-sha512", "sha512", 64),
    "argon2": keycloak_argon2,
}


@pytest.mark.parametrize("made", KEYCLOAK_CREDENTIALS.values(), ids=KEYCLOAK_CREDENTIALS.keys())
def test_a_keycloak_credential_becomes_a_django_hash_that_checks_the_old_password(made):
    credential = made()

    encoded = keycloak_to_django_hash(
        secret_data=credential["secretData"], credential_data=credential["credentialData"]
    )

    assert check_password(PASSWORD, encoded)
    assert not check_password("wrong", encoded)
    assert len(encoded) <= 128  # fits User.password (PostgreSQL enforces it)


def test_a_bcrypt_hash_answers_a_password_longer_than_72_bytes_as_bcrypt_did():
    """bcrypt reads 72 bytes; the bcrypt package (5.x) would raise for more — a 500 at sign-in."""
    long_password = "p" * 72
    made = bcrypt.hashpw(long_password.encode(), bcrypt.gensalt(4)).decode()
    encoded = to_django_hash(made)

    assert check_password(long_password, encoded)
    assert check_password(long_password + "ignored by bcrypt", encoded)
    assert not check_password("p" * 71, encoded)


MALFORMED = {
    "empty": "",
    "plain text": "hunter2",
    "md5-crypt": "$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0",
    "bcrypt cut short": "$2b$12$abcdefghijklmnopqrstuv",
    "bcrypt cost 31": "$2b$31$" + "a" * 53,
    "argon2 garbage": "$argon2id$v=19$m=nope$salt$hash",
    "argon2 asking 4 GiB": "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    "pbkdf2 unknown digest": f"$pbkdf2-md5$1000${ab64(SALT)}${ab64(pbkdf2('sha256'))}",
    "pbkdf2 not base64": "$pbkdf2-sha256$1000$!!!$???",
    "pbkdf2 a billion iterations": (
        f"$pbkdf2-sha256$1000000000${ab64(SALT)}${ab64(pbkdf2('sha256'))}"
    ),
    "scrypt N not a power of two": f"$scrypt$n=1000,r=8,p=1${ab64(SALT)}${ab64(SALT * 2)}",
    "scrypt asking 16 GiB": f"$scrypt$ln=24,r=8,p=1${ab64(SALT)}${ab64(SALT * 2)}",
    "Django pbkdf2 without hash": "pbkdf2_sha256$1000$salt$",
    "Django pbkdf2 iterations text": "pbkdf2_sha256$many$salt$" + b64(bytes(32)),
    "argon2 with a 128-byte tag (too long for the column)": (
        "$argon2id$v=19$m=1024,t=1,p=1$" + b64(SALT, pad=False) + "$" + b64(bytes(128), pad=False)
    ),
}


def test_a_good_hash_passes_before_the_malformed_ones_are_refused():
    assert to_django_hash(FOREIGN_HASHES["bcrypt $2b$"]()).startswith("bcrypt$$2b$04$")


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_or_too_costly_hash_is_refused_with_a_reason(text):
    with pytest.raises(HashFormatError) as refused:
        to_django_hash(text)

    assert str(refused.value)


@pytest.mark.parametrize(
    ("secret", "credential"),
    [
        ("not json", json.dumps({"algorithm": "pbkdf2-sha256", "hashIterations": 1})),
        (
            json.dumps({"value": "AAAA"}),
            json.dumps({"algorithm": "pbkdf2-sha256", "hashIterations": 1}),
        ),
        (
            json.dumps({"value": b64(bytes(32)), "salt": b64(SALT)}),
            json.dumps({"algorithm": "md5", "hashIterations": 1}),
        ),
    ],
    ids=["secretData not JSON", "no salt", "unknown algorithm"],
)
def test_a_malformed_keycloak_credential_is_refused(secret, credential):
    with pytest.raises(HashFormatError):
        keycloak_to_django_hash(secret_data=secret, credential_data=credential)
