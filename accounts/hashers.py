"""Argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1), one hash at a time per
process.

Django's own Argon2 hasher uses m=100 MiB, p=8 (~180 ms here); OWASP's profile costs ~19 ms
for the same class of protection, which keeps sign-in fast without weakening the hash.
Subclassing Django's hasher (rather than writing one) keeps its encode/verify/upgrade logic:
`must_update` makes hashes with other parameters upgrade on the next successful login.

Hashes of this profile are verified by libsodium (PyNaCl, PyCA's binding) instead of
argon2-cffi: same algorithm, same PHC string, same answer, in less time. argon2-cffi's wheels
compile the reference code for SSE2 only (AVX2/AVX-512 are compile-time choices there, which a
portable wheel cannot make); libsodium picks its AVX-512/AVX2 code at run time. Measured on
this 2-vCPU VM (BENCHMARKS.md round 6): 8 ms of computation against 17.5 ms, plus ~7 ms of
kernel time because libsodium maps a fresh 19 MiB block for each hash (4,864 page faults)
where glibc lets argon2-cffi reuse its block: 15 ms against 17.5 per verification, sign-in
x1.09 under load. Every other hash (other parameters, argon2i, Django's older formats) and
every encode stay with Django's argon2-cffi code: encodes are rare (a new or changed password,
the upgrade on sign-in of a hash with other parameters) and take Django's 22-character salt,
which libsodium's API cannot (16 bytes exactly). A sign-in that finds no account verifies
against a dummy hash of this profile (`dummy_verify`, accounts.backends), so it costs what a
wrong password costs.

Every hash runs on one thread per process (`_hashing_thread`). argon2-cffi works in a 19 MiB
block that glibc keeps in the arena of the thread that hashed, so a worker whose N threads
hashed at the same moment kept N blocks resident: gunicorn's deploy config (2 threads per
worker) measured 131-132 MiB per worker under sign-in load against 112 MiB with one thread,
over the 120 MiB target (BENCHMARKS.md round 5). libsodium's block is returned after each
hash, but N at once would still need N blocks; one thread bounds both. The hash (C, without
the GIL) still overlaps the other threads' Python; a worker has one core's share of the
machine, so two hashes at once in one worker gained no throughput. Python's thread pool is
used as it is (the hand-off costs ~0.1 ms per hash).
"""

from __future__ import annotations

import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id
from django.contrib.auth.hashers import Argon2PasswordHasher

_state: dict[str, Any] = {"executor": None, "lock": threading.Lock()}


def _hashing_thread() -> ThreadPoolExecutor:
    executor = _state["executor"]
    if executor is None:
        with _state["lock"]:
            executor = _state["executor"]
            if executor is None:
                executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2")
                _state["executor"] = executor
    return executor


def _forget_after_fork() -> None:
    # A forked child (gunicorn's workers are forked from the master) has no copy of the
    # parent's thread: an inherited executor would queue work that nothing ever runs (and a
    # lock held by another parent thread at the fork would stay held).
    _state["executor"], _state["lock"] = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _on_hashing_thread(function: Any, *args: Any) -> Any:
    return _hashing_thread().submit(function, *args).result()


class OWASPArgon2PasswordHasher(Argon2PasswordHasher):
    # Same algorithm name as Django's hasher (which it replaces in PASSWORD_HASHERS), so
    # existing argon2 hashes verify and `must_update` re-hashes other parameters on login.
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

    def encode(self, password: str, salt: str) -> str:
        return _on_hashing_thread(super().encode, password, salt)

    def verify(self, password: str, encoded: str) -> bool:
        phc = encoded[len(self.algorithm) :]
        if encoded.startswith(self._profile_prefix) and len(phc) < _LIBSODIUM_STRBYTES:
            return _on_hashing_thread(_libsodium_verify, password, phc.encode())
        return _on_hashing_thread(super().verify, password, encoded)

    @property
    def _profile_prefix(self) -> str:
        # The hashes this class makes (argon2-cffi's encoding, read by libsodium as well).
        return (
            f"{self.algorithm}$argon2id$v=19$m={self.memory_cost},"
            f"t={self.time_cost},p={self.parallelism}$"
        )

    def dummy_verify(self, password: str) -> None:
        """The work of verifying a password of this profile, for a sign-in that found no
        account (or no usable hash): the answer is thrown away, the time is the same."""
        self.verify(password, _dummy_hash(self))


# libsodium reads at most crypto_pwhash_STRBYTES - 1 characters (PyNaCl refuses longer).
_LIBSODIUM_STRBYTES = 128


def _libsodium_verify(password: str, phc: bytes) -> bool:
    # libsodium answers a wrong password and an unreadable hash alike (-1, InvalidkeyError):
    # both are "no".
    try:
        return nacl.pwhash.argon2id.verify(phc, password.encode())
    except nacl.exceptions.InvalidkeyError:
        return False


_dummy_hashes: dict[str, str] = {}


def _dummy_hash(hasher: OWASPArgon2PasswordHasher) -> str:
    # One hash of a random password per process and profile, made on first use.
    prefix = hasher._profile_prefix
    if prefix not in _dummy_hashes:
        _dummy_hashes[prefix] = hasher.encode(secrets.token_urlsafe(24), hasher.salt())
    return _dummy_hashes[prefix]
