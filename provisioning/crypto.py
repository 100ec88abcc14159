"""The apps' SCIM bearer tokens, encrypted at rest: they must be sent on, so they cannot be hashed.

Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under `MultiFernet`: the first key
encrypts, every key decrypts, so keys rotate without losing a token (`rotate_token` re-encrypts
with the first). The keys are `IDP_PROVISIONING_KEYS` (Fernet keys, comma-separated in the
environment) when set; otherwise each is derived with HKDF-SHA256 from `SECRET_KEY` and then
`SECRET_KEY_FALLBACKS`, so a deployment needs no new secret and a secret-key rotation that
keeps the old key as a fallback keeps every token readable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# HKDF's `info`: a key derived for this purpose is of no use for anything else.
HKDF_INFO = b"company-idp provisioning token encryption v1"


class TokenUnreadable(Exception):
    """The stored token cannot be decrypted with any configured key."""


def _derived_key(secret: str) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret.encode()
    )
    return base64.urlsafe_b64encode(key)


def _keys() -> list[bytes]:
    configured = [key.encode() for key in settings.IDP_PROVISIONING_KEYS]
    if configured:
        return configured
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [_derived_key(secret) for secret in secrets if secret]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in _keys()])


def encrypt_token(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode()


def decrypt_token(encrypted: str) -> str:
    try:
        return _fernet().decrypt(encrypted.encode()).decode()
    except InvalidToken as error:
        raise TokenUnreadable("the stored token cannot be read with the configured keys") from error


def rotate_token(encrypted: str) -> str:
    """The same token encrypted with the current first key."""
    try:
        return _fernet().rotate(encrypted.encode()).decode()
    except InvalidToken as error:
        raise TokenUnreadable("the stored token cannot be read with the configured keys") from error
