"""Subscriber secrets: made (`whsec_` + 32 random bytes in base64, the Standard Webhooks
form), shown once, stored encrypted.

A secret must be used again to sign every message, so it cannot be stored hashed like a client
secret; it is encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key
derived with HKDF-SHA256 from `IDP_WEBHOOK_KEY` when set, else from `DJANGO_SECRET_KEY`
(with the `DJANGO_SECRET_KEY_FALLBACKS` still able to decrypt during a rotation). Production
should set `IDP_WEBHOOK_KEY` once and keep it: rotating the Django secret key then leaves the
webhooks alone. Decision and operator steps: docs/guides/webhooks.md.
"""

from __future__ import annotations

import base64
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

PREFIX = "whsec_"
SECRET_BYTES = 32
_HKDF_INFO = b"company-idp webhook subscriber secrets v1"


class SecretUnreadable(Exception):
    """The stored secret does not decrypt under any configured key (the key was changed)."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for (its base64 part decoded)."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def _fernet_key(material: str) -> bytes:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        material.encode()
    )
    return base64.urlsafe_b64encode(derived)


def _fernet() -> MultiFernet:
    configured = getattr(settings, "IDP_WEBHOOK_KEY", "")
    materials = (
        [configured] if configured else [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    )
    return MultiFernet([Fernet(_fernet_key(material)) for material in materials])


def encrypt_secret(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode("ascii")).decode()
    except InvalidToken as error:
        raise SecretUnreadable(
            "the webhook secret does not decrypt with the configured key"
        ) from error
