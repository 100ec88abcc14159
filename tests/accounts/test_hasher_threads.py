"""Argon2id hashing runs on one thread per process (accounts.hashers): same answers, one
19 MiB block resident whatever the number of threads signing in, and it survives a fork."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password

from accounts import hashers
from accounts.hashers import OWASPArgon2PasswordHasher

ROOT = Path(__file__).resolve().parents[2]


def test_answers_are_django_argon2_answers():
    hasher = OWASPArgon2PasswordHasher()
    encoded = hasher.encode("correct horse", hasher.salt())
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert hasher.verify("correct horse", encoded)
    assert not hasher.verify("wrong horse", encoded)
    assert not hasher.verify("correct horse", encoded[:-4] + "AAAA")  # a damaged hash: False
    # Through Django's API, as sign-in uses it.
    made = make_password("pw")
    assert check_password("pw", made)
    assert not check_password("nope", made)


def test_every_hash_runs_on_one_thread_one_at_a_time(monkeypatch):
    seen, running, most = [], [0], [0]
    guard = threading.Lock()
    real_verify = Argon2PasswordHasher.verify

    def watched(self, password, encoded):
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
            seen.append(threading.get_ident())
        try:
            time.sleep(0.01)  # widen the window in which a second hash could start
            return real_verify(self, password, encoded)
        finally:
            with guard:
                running[0] -= 1

    monkeypatch.setattr(Argon2PasswordHasher, "verify", watched)
    hasher = OWASPArgon2PasswordHasher()
    encoded = hasher.encode("pw", hasher.salt())
    answers, callers = [], set()

    def sign_in(password):
        callers.add(threading.get_ident())
        answers.append((password, hasher.verify(password, encoded)))

    threads = [threading.Thread(target=sign_in, args=(p,)) for p in ["pw", "no"] * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers) == sorted([("pw", True), ("no", False)] * 4)
    assert len(seen) == 8
    assert len(set(seen)) == 1  # one hashing thread ...
    assert not callers & set(seen)  # ... which is none of the callers
    assert most[0] == 1  # never two hashes at once


def _fork_child(queue):
    hasher = OWASPArgon2PasswordHasher()
    encoded = hasher.encode("pw", hasher.salt())
    queue.put(hasher.verify("pw", encoded) and not hasher.verify("x", encoded))


def test_a_forked_child_hashes_on_a_thread_of_its_own():
    # The parent's hashing thread exists (gunicorn's master may have hashed before forking).
    hasher = OWASPArgon2PasswordHasher()
    assert hasher.verify("pw", hasher.encode("pw", hasher.salt()))
    assert hashers._state["executor"] is not None
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_fork_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # an inherited executor would wait forever on a thread not there
        child.kill()
        pytest.fail("the forked child never finished hashing")
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True


RSS_PROBE = """
import re, threading, django
from django.conf import settings
settings.configure()
django.setup()
from accounts.hashers import OWASPArgon2PasswordHasher
hasher = OWASPArgon2PasswordHasher()
encoded = hasher.encode("pw", hasher.salt())
for _ in range(2):  # steady state: the block now stays in the hashing thread's arena
    assert hasher.verify("pw", encoded)
def rss():
    status = open("/proc/self/status").read()
    return int(re.search(r"VmRSS:\\s+(\\d+)", status).group(1)) / 1024
before = rss()
def sign_in():
    for _ in range(4):
        assert hasher.verify("pw", encoded)
threads = [threading.Thread(target=sign_in) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(rss() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_four_threads_signing_in_keep_one_argon2_block_resident():
    # In a fresh interpreter: four threads verifying at once grew a process by 4 x 19 MiB when
    # each hashed on its own thread (glibc keeps the block in each thread's arena); on one
    # hashing thread the process keeps the block it already had (steady state: the first hash
    # of a process maps a fresh block and gives it back; from the second one glibc keeps it).
    result = subprocess.run(
        [sys.executable, "-c", RSS_PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown_mib = float(result.stdout.strip())
    assert grown_mib < 10, grown_mib
