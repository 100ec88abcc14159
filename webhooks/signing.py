"""Standard Webhooks signatures (https://www.standardwebhooks.com, "Signature scheme"):
`webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`.

Three lines of the standard library; the reference library (`standardwebhooks`) is used only by
the tests, to verify these signatures with an implementation that is not this one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from webhooks.secrets import secret_key_bytes


def sign(*, secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(*, secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret=secret, message_id=message_id, timestamp=timestamp, body=body
        ),
    }
