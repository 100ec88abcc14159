"""Argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1), one hash at a time per
process.

Django's own Argon2 hasher uses m=100 MiB, p=8 (~180 ms here); OWASP's profile costs ~19 ms
for the same class of protection, which keeps sign-in fast without weakening the hash (10-12 ms
with argon2-cffi-bindings compiled for AVX2, as `make install` and the image build it; PyPI's
wheel is compiled for SSE2 only).
Subclassing Django's hasher (rather than writing one) keeps its encode/verify/upgrade logic:
`must_update` makes hashes with other parameters upgrade on the next successful login.

Every hash runs on one thread per process (`_hashing_thread`). Argon2 works in a 19 MiB block
that glibc keeps in the arena of the thread that hashed (after the first hash it no longer
returns it to the system), so a worker whose N threads hash at the same moment keeps N blocks
resident: gunicorn's deploy config (2 threads per worker) measured 131-132 MiB per worker under
sign-in load against 112 MiB with one thread, over the 120 MiB target; 113 MiB now, at the
same sign-in rate. A burst of sign-ins can no longer grow a worker by
19 MiB per thread. The hash (C, without the GIL) still overlaps the other threads' Python; a
worker has one core's share of the machine, so two hashes at once in one worker gained no
throughput. Python's thread pool is used as it is (the hand-off costs ~0.1 ms per hash).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

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
        return _on_hashing_thread(super().verify, password, encoded)
