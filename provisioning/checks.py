"""The provisioning settings, checked by `manage.py check` (and `check --deploy` before a
release, and `migrate`), not when an administrator first saves an app's SCIM token."""

from __future__ import annotations

import binascii
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, register


@register()
def check_provisioning_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Each of IDP_PROVISIONING_KEYS must be a Fernet key (provisioning/crypto.py); which one is
    wrong is said by its position, never by its value (it is a secret)."""
    errors = []
    for position, key in enumerate(settings.IDP_PROVISIONING_KEYS, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, binascii.Error):
            errors.append(
                Error(
                    f"IDP_PROVISIONING_KEYS: key {position} is not a Fernet key.",
                    hint="Each key is 32 random bytes, URL-safe base64 (44 characters): "
                    'python -c "from cryptography.fernet import Fernet; '
                    'print(Fernet.generate_key().decode())"',
                    id="provisioning.E001",
                )
            )
    return errors
