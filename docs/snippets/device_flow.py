"""Sign a person in from a command-line tool, TV or kiosk (OAuth 2.0 device authorization grant).

pip install requests. Register the app in the IdP admin as "Device or command-line app": it gets
a client id and no secret. The person approves the sign-in in their own browser.
"""

from __future__ import annotations

import time
from typing import Any

import requests

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class DeviceSignInFailed(Exception):
    """The person denied the sign-in, the code expired, or the IdP refused the request."""


def start_sign_in(issuer: str, client_id: str, scope: str = "openid profile") -> dict[str, Any]:
    """Ask for the codes. Show the person `user_code` and `verification_uri` (or turn
    `verification_uri_complete` into a QR code); keep `device_code` to yourself."""
    metadata = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    metadata.raise_for_status()
    endpoints = metadata.json()
    response = requests.post(
        endpoints["device_authorization_endpoint"],
        data={"client_id": client_id, "scope": scope},
        timeout=10,
    )
    response.raise_for_status()
    return {**response.json(), "token_endpoint": endpoints["token_endpoint"]}


def wait_for_tokens(started: dict[str, Any], client_id: str) -> dict[str, Any]:
    """Poll until the person decides: tokens, or DeviceSignInFailed. Never faster than
    `interval`; each `slow_down` adds 5 seconds for good (RFC 8628 §3.5)."""
    interval = started.get("interval", 5)
    deadline = time.monotonic() + started["expires_in"]
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = requests.post(
            started["token_endpoint"],
            data={
                "grant_type": DEVICE_CODE_GRANT,
                "device_code": started["device_code"],
                "client_id": client_id,
            },
            timeout=10,
        )
        body = response.json()
        error = body.get("error")
        if error is None:
            return body  # access_token, refresh_token, id_token (with `openid`)
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise DeviceSignInFailed(error)  # access_denied, expired_token, …
    raise DeviceSignInFailed("expired_token")
