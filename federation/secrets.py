"""Upstream client secrets, encrypted at rest: they must be sent on (to the upstream's token
endpoint), so they cannot be hashed like our own clients' secrets.

Fernet (cryptography) under a key derived from SECRET_KEY; SECRET_KEY_FALLBACKS still decrypt,
so a secret-key rotation keeps the stored secrets readable (re-save to re-encrypt).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_PURPOSE = b"idp.federation.client-secret"


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(_PURPOSE + b"\0" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys() -> MultiFernet:
    return MultiFernet(
        [_fernet(key) for key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]]
    )


def encrypt_secret(value: str) -> str:
    return _keys().encrypt(value.encode()).decode() if value else ""


def decrypt_secret(value: str) -> str:
    """The clear secret, or "" when there is none or it cannot be read (another SECRET_KEY)."""
    if not value:
        return ""
    try:
        return _keys().decrypt(value.encode()).decode()
    except InvalidToken:
        return ""
