"""RFC 8176 `amr` of a session signed in upstream (accounts.sessions, read by the ID token)."""

from __future__ import annotations

import pytest

from accounts.sessions import authentication_context, authentication_methods, has_second_factor

UPSTREAM = {"method": "socialaccount", "at": 1.0, "provider": "corp", "uid": "u-1"}

pytestmark = pytest.mark.spec("RFC 8176", "2")


def test_an_upstream_sign_in_is_federated_and_not_a_password():
    amr = authentication_methods([UPSTREAM])
    assert amr == ["fed"]
    assert not has_second_factor(amr)
    assert authentication_context(amr) == ""


def test_a_trusted_upstream_second_factor_counts_as_multi_factor():
    amr = authentication_methods([UPSTREAM], upstream_mfa=["corp", "u-1"])
    assert amr == ["fed", "mfa"]
    assert has_second_factor(amr)


def test_the_trusted_second_factor_of_another_upstream_identity_does_not_count():
    assert authentication_methods([UPSTREAM], upstream_mfa=["corp", "u-2"]) == ["fed"]
    assert authentication_methods([UPSTREAM], upstream_mfa=["other", "u-1"]) == ["fed"]


def test_our_own_second_factor_after_an_upstream_sign_in_is_multi_factor():
    records = [UPSTREAM, {"method": "mfa", "type": "totp", "at": 2.0}]
    assert authentication_methods(records) == ["fed", "mfa", "otp"]
