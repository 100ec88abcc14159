"""Hashes of the project's Argon2id profile are verified by libsodium (accounts.hashers):
the same answers as Django's argon2-cffi code, every other hash still by argon2-cffi, and a
refused sign-in costs one verification of the profile whatever the reason (no account, no
usable hash, wrong password)."""

from __future__ import annotations

import pytest
from argon2 import low_level
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password

from accounts import hashers
from accounts.hashers import OWASPArgon2PasswordHasher

PROFILE = "argon2$argon2id$v=19$m=19456,t=2,p=1$"
PASSWORDS = ["correct horse", "wrong horse", "", "pässwörd ✓ 密码", "x" * 300]


@pytest.fixture
def calls(monkeypatch):
    """Which implementation each verification and encode ran: libsodium or argon2-cffi."""
    seen: list[str] = []
    libsodium, cffi_verify = hashers._libsodium_verify, Argon2PasswordHasher.verify
    cffi_encode = Argon2PasswordHasher.encode

    def via_libsodium(password, phc):
        seen.append("libsodium")
        return libsodium(password, phc)

    def via_cffi(self, password, encoded):
        seen.append("argon2-cffi")
        return cffi_verify(self, password, encoded)

    def encode(self, password, salt):
        seen.append("encode")
        return cffi_encode(self, password, salt)

    monkeypatch.setattr(hashers, "_libsodium_verify", via_libsodium)
    monkeypatch.setattr(Argon2PasswordHasher, "verify", via_cffi)
    monkeypatch.setattr(Argon2PasswordHasher, "encode", encode)
    return seen


def test_profile_hashes_verify_with_libsodium_and_answer_as_argon2_cffi(calls):
    hasher = OWASPArgon2PasswordHasher()
    encoded = hasher.encode("correct horse", hasher.salt())
    assert encoded.startswith(PROFILE)
    calls.clear()
    ours = [hasher.verify(p, encoded) for p in PASSWORDS]
    assert calls == ["libsodium"] * len(PASSWORDS)
    # Django's own hasher (argon2-cffi) on the same strings.
    assert ours == [Argon2PasswordHasher().verify(p, encoded) for p in PASSWORDS]
    assert ours == [True, False, False, False, False]
    # A password made of the other test strings verifies too (non-ASCII, long, empty).
    for password in PASSWORDS[2:]:
        made = hasher.encode(password, hasher.salt())
        assert hasher.verify(password, made)
        assert not hasher.verify(password + " ", made)


def test_a_damaged_profile_hash_is_a_no_not_an_error(calls):
    hasher = OWASPArgon2PasswordHasher()
    encoded = hasher.encode("pw", hasher.salt())
    assert hasher.verify("pw", encoded)
    salt_and_hash = encoded[len(PROFILE) :]
    damaged = [
        encoded[:-4] + "AAAA",  # other hash bytes
        encoded[:-10],  # truncated
        PROFILE + "!!!!" + salt_and_hash[4:],  # not base64
        PROFILE + "sälz" + salt_and_hash[4:],  # not ASCII
        PROFILE + "$",  # nothing after the parameters
    ]
    calls.clear()
    assert [hasher.verify("pw", d) for d in damaged] == [False] * len(damaged)
    assert calls == ["libsodium"] * len(damaged)


def _argon2_cffi_hash(variety: low_level.Type, salt: bytes):
    """A maker of hashes with this profile's costs, by argon2-cffi directly."""
    return lambda password: (
        "argon2"
        + low_level.hash_secret(password.encode(), salt, 2, 19456, 1, 32, variety).decode("ascii")
    )


@pytest.mark.parametrize(
    "made",
    [
        # Django's own Argon2 parameters (m=100 MiB, p=8): upgraded on the next sign-in.
        pytest.param(lambda pw: Argon2PasswordHasher().encode(pw, "s" * 22), id="django-params"),
        # argon2i, which older Django versions made.
        pytest.param(_argon2_cffi_hash(low_level.Type.I, b"s" * 16), id="argon2i"),
        # This profile with a salt too long for libsodium's 127 characters.
        pytest.param(_argon2_cffi_hash(low_level.Type.ID, b"s" * 64), id="long-salt"),
    ],
)
def test_other_argon2_hashes_stay_with_argon2_cffi(calls, made):
    hasher = OWASPArgon2PasswordHasher()
    encoded = made("pw")
    calls.clear()
    assert hasher.verify("pw", encoded)
    assert not hasher.verify("px", encoded)
    assert calls == ["argon2-cffi", "argon2-cffi"]


def test_django_api_still_upgrades_other_parameters(db):
    encoded = Argon2PasswordHasher().encode("pw", "s" * 22)
    upgraded = []
    assert check_password("pw", encoded, setter=upgraded.append)
    assert upgraded == ["pw"]  # Django re-encodes with the preferred hasher's parameters
    assert check_password("pw", make_password("pw"), setter=upgraded.append)
    assert upgraded == ["pw"]  # a hash of the profile is not upgraded again


# Every refused sign-in: one verification of the profile, no encode (which takes longer than
# libsodium's verification and would tell an unknown account from a wrong password).


@pytest.fixture
def warm_dummy():
    # The dummy hash is made once per process; make it before counting.
    hashers._dummy_hash(OWASPArgon2PasswordHasher())


def test_refused_sign_ins_cost_one_profile_verification(rf, user, password, calls, warm_dummy):
    request = rf.post("/accounts/login/")
    calls.clear()
    assert authenticate(request, username=user.username, password=password) == user
    assert calls == ["libsodium"]
    for username, typed in [
        (user.username, "wrong password"),
        ("nobody-by-that-name", password),
        ("nobody@example.com", password),
    ]:
        calls.clear()
        assert authenticate(request, username=username, password=typed) is None
        assert calls == ["libsodium"], (username, calls)


@pytest.mark.parametrize("stored", ["!unusable-password", "", "nohasher$1$abc"])
def test_an_account_without_a_verifiable_hash_costs_the_same(
    rf, user, password, calls, warm_dummy, stored
):
    request = rf.post("/accounts/login/")
    calls.clear()
    assert authenticate(request, username=user.username, password=password) == user
    assert calls == ["libsodium"]
    get_user_model().objects.filter(pk=user.pk).update(password=stored)
    calls.clear()
    assert authenticate(request, username=user.username, password=password) is None
    assert calls == ["libsodium"]
