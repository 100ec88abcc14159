"""IDP_PROVISIONING_KEYS is checked by `manage.py check`, never echoed."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks

pytestmark = pytest.mark.once


def provisioning_errors() -> list:
    return [error for error in run_checks() if error.id.startswith("provisioning.")]


def test_fernet_keys_or_none_pass_and_a_wrong_key_is_named_by_position(settings):
    settings.IDP_PROVISIONING_KEYS = []
    assert provisioning_errors() == []  # derived from the secret key
    good = Fernet.generate_key().decode()
    settings.IDP_PROVISIONING_KEYS = [good, Fernet.generate_key().decode()]
    assert provisioning_errors() == []

    for wrong in ("not-a-key", good[:-4], "A" * 43 + "!"):
        settings.IDP_PROVISIONING_KEYS = [good, wrong]
        (error,) = provisioning_errors()
        assert error.id == "provisioning.E001"
        assert "key 2 is not a Fernet key" in error.msg
        assert wrong not in error.msg
        assert wrong not in (error.hint or "")
