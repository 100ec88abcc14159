"""The signing keys every process signs and publishes with, read through one provider.

Two sources, per algorithm (RS256, ES256):

- **Settings** (`oauth_clients/keys.py`, read at start): the environment
  (`IDP_OIDC_PRIVATE_KEY` and its `_NEXT_`/`_PREVIOUS_` and `EC_` forms, or `..._FILE`) or the
  key directory `IDP_SIGNING_KEY_DIR`. A change takes a restart, as it always has.
- **The database** (`IDP_SIGNING_KEY_STORE=database`): `SigningKey` rows, the private part
  encrypted with Fernet under `IDP_KEY_ENCRYPTION_KEY` (comma-separated Fernet keys: the first
  encrypts, each decrypts, so the key-encryption key itself can be rotated), changed while
  serving by `oauth_clients/key_rotation.py`.

Which wins: a key set in the environment always wins for its algorithm (an operator who sets
`IDP_OIDC_PRIVATE_KEY` keeps today's behaviour, database or not). Otherwise, with the database
store on, the database's keys are used and the key directory is not read; with it off (the
default), the key directory, as before.

No restart: every change of the database keys writes a new generation (a digest of the keys'
kids and states) to the shared cache. Each process holds its key ring in memory and asks the cache
for the generation at most every `IDP_SIGNING_KEYS_REFRESH_SECONDS` (5 s by default); only when
it differs does it read the rows again (one query) and decrypt them. So signing a token costs a
clock comparison, no query (tests/oidc/test_key_store.py pins it); a cache that lost the value
is refilled from one aggregate query. The published documents follow by themselves: JWKS and
discovery are memoised under the key set's fingerprint (`oauth_clients/oidc/published.py`), the
SAML key files under each key's kid (`oauth_clients/saml/keys.py`).

A stored key that cannot be decrypted (a wrong or missing key-encryption key, a tampered row)
raises `KeyStoreUnreadable` with the key's kid and the reason, never the key material; a process
that already holds a good ring keeps serving with it and logs the error.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver
from oauth2_provider.settings import oauth2_settings

from oauth_clients.keys import (
    ES256,
    RS256,
    KeySet,
    key_algorithm,
    key_id,
    load_private_key,
)
from oauth_clients.models import SigningKey

logger = logging.getLogger(__name__)

DATABASE = "database"
GENERATION_CACHE_KEY = "signing-keys:generation"
ALGORITHMS = (RS256, ES256)


class KeyStoreUnreadable(ImproperlyConfigured):
    """The database keys cannot be used: no or a malformed key-encryption key, or a stored key
    that does not decrypt (wrong key-encryption key, tampered ciphertext). The message names
    the key's kid and the cause; it never carries key material."""


def database_store_enabled() -> bool:
    return getattr(settings, "IDP_SIGNING_KEY_STORE", "") == DATABASE


def from_environment(algorithm: str) -> bool:
    """Whether the environment sets the signing key of `algorithm` (then it wins)."""
    return algorithm in getattr(settings, "IDP_SIGNING_KEYS_FROM_ENVIRONMENT", ())


def database_algorithms() -> tuple[str, ...]:
    """The algorithms whose keys come from the database (none with the store off)."""
    if not database_store_enabled():
        return ()
    return tuple(algorithm for algorithm in ALGORITHMS if not from_environment(algorithm))


# --- The key-encryption key -------------------------------------------------------------------


def encryption_key_errors() -> list[str]:
    """What is wrong with `IDP_KEY_ENCRYPTION_KEY` (empty when nothing): it must be one or more
    Fernet keys (32 bytes, URL-safe base64). The values are never quoted back."""
    keys = list(getattr(settings, "IDP_KEY_ENCRYPTION_KEY", []))
    if not keys:
        return ["IDP_KEY_ENCRYPTION_KEY is not set"]
    problems = []
    for position, value in enumerate(keys, start=1):
        try:
            Fernet(value.encode())
        except (ValueError, TypeError):
            problems.append(
                f"IDP_KEY_ENCRYPTION_KEY's key {position} of {len(keys)} is not a Fernet key "
                "(32 bytes, URL-safe base64)"
            )
    return problems


def _cipher() -> MultiFernet:
    problems = encryption_key_errors()
    if problems:
        raise KeyStoreUnreadable("; ".join(problems))
    return MultiFernet([Fernet(key.encode()) for key in settings.IDP_KEY_ENCRYPTION_KEY])


def encrypt_private_key(pem: str) -> str:
    return _cipher().encrypt(pem.encode("ascii")).decode("ascii")


def reencrypt_private_key(row: SigningKey) -> str:
    """The row's ciphertext under the first key-encryption key (after a change of it: the old
    key listed after the new one), checked to decrypt to the row's key first."""
    decrypt_private_key(row)
    return _cipher().rotate(row.encrypted_private_key.encode("ascii")).decode("ascii")


def decrypt_private_key(row: SigningKey) -> str:
    """The PEM of a stored key, checked to be the key its row names (a ciphertext moved from
    another row decrypts, but to another kid)."""
    try:
        pem = _cipher().decrypt(row.encrypted_private_key.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise KeyStoreUnreadable(
            f"The stored signing key {row.kid} does not decrypt with IDP_KEY_ENCRYPTION_KEY "
            "(a different key-encryption key, or a changed row)."
        ) from exc
    try:
        matches = key_id(pem) == row.kid and key_algorithm(pem) == row.algorithm
    except (ValueError, TypeError):
        matches = False
    if not matches:
        raise KeyStoreUnreadable(f"The stored signing key {row.kid} decrypts to another key.")
    return pem


# --- The generation ---------------------------------------------------------------------------


def database_generation() -> str:
    """A digest of every stored key's kid and state ("" when there are none): it changes with
    every step, whatever the clocks of the hosts that took them (a newest-timestamp would not
    move when a host whose clock is behind makes a change)."""
    rows = SigningKey.objects.order_by("kid").values_list("kid", "state")
    if not rows:
        return ""
    text = "\n".join(f"{kid}:{state}" for kid, state in rows)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def publish_generation() -> str:
    """Tell every process the database keys changed (called after each change commits)."""
    generation = database_generation()
    cache.set(GENERATION_CACHE_KEY, generation, timeout=None)
    forget()  # this process need not wait for its next check
    return generation


def current_generation() -> str:
    """The generation in the shared cache; refilled from the database when the cache lost it
    (or does not answer)."""
    try:
        generation = cache.get(GENERATION_CACHE_KEY)
    except Exception:  # any cache backend's own error (Redis down): the database still knows
        logger.warning("signing keys: the shared cache did not answer; asking the database")
        return database_generation()
    if generation is None:
        generation = database_generation()
        try:
            cache.set(GENERATION_CACHE_KEY, generation, timeout=None)
        except Exception:  # as above: the next check asks again
            logger.warning("signing keys: the shared cache did not answer")
    return str(generation)


# --- The key ring -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRing:
    """What one process signs and publishes with at a moment: per algorithm, the signing key,
    the next ones and the previous ones (PEM)."""

    sets: dict[str, KeySet]
    generation: str = ""
    pems_published: tuple[str, ...] = ()

    @classmethod
    def of(cls, sets: dict[str, KeySet], generation: str = "") -> KeyRing:
        published: list[str] = []
        for algorithm in ALGORITHMS:
            keys = sets.get(algorithm)
            if keys is None:
                continue
            current = [keys.current] if keys.current else []
            # Signing, next, previous (the previous ones only beside a signing key).
            published += [*current, *keys.next, *(keys.previous if current else ())]
        return cls(sets=sets, generation=generation, pems_published=tuple(published))

    def signing(self, algorithm: str) -> str:
        keys = self.sets.get(algorithm)
        return keys.current if keys else ""


def settings_key_set(algorithm: str) -> KeySet:
    """The keys of `algorithm` as settings read them at start (environment or key directory)."""
    if algorithm == RS256:
        current = oauth2_settings.OIDC_RSA_PRIVATE_KEY
        return KeySet(
            current=current,
            previous=tuple(oauth2_settings.OIDC_RSA_PRIVATE_KEYS_INACTIVE),
            next=tuple(getattr(settings, "IDP_OIDC_NEXT_PRIVATE_KEYS", [])),
        )
    pems = list(getattr(settings, "IDP_OIDC_EC_PRIVATE_KEYS", []))
    return KeySet(
        current=pems[0] if pems else "",
        previous=tuple(pems[1:]),
        next=tuple(getattr(settings, "IDP_OIDC_EC_NEXT_PRIVATE_KEYS", [])),
    )


def database_key_sets(algorithms: Iterable[str]) -> dict[str, KeySet]:
    """The published database keys of `algorithms`, decrypted (raises `KeyStoreUnreadable`)."""
    wanted = list(algorithms)
    rows = SigningKey.objects.filter(
        algorithm__in=wanted,
        state__in=[SigningKey.State.NEXT, SigningKey.State.ACTIVE, SigningKey.State.RETIRED],
    ).order_by("-created_at", "-pk")
    by_algorithm: dict[str, dict[str, list[str]]] = {a: {} for a in wanted}
    for row in rows:
        by_algorithm[row.algorithm].setdefault(row.state, []).append(decrypt_private_key(row))
    sets = {}
    for algorithm, states in by_algorithm.items():
        active = states.get(SigningKey.State.ACTIVE, [])
        sets[algorithm] = KeySet(
            current=active[0] if active else "",
            previous=tuple(states.get(SigningKey.State.RETIRED, [])),
            next=tuple(states.get(SigningKey.State.NEXT, [])),
        )
    return sets


def load_ring(generation: str = "") -> KeyRing:
    from_database = database_algorithms()
    sets = database_key_sets(from_database) if from_database else {}
    for algorithm in ALGORITHMS:
        if algorithm not in sets:
            sets[algorithm] = settings_key_set(algorithm)
    return KeyRing.of(sets, generation)


class _Provider:
    """This process's key ring and when to look at the generation again."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ring: KeyRing | None = None
        self.check_after = 0.0

    def get(self) -> KeyRing:
        ring = self.ring
        if ring is not None and time.monotonic() < self.check_after:
            return ring
        if not database_algorithms():
            # Settings only: nothing changes before the next start (a test's settings change
            # drops the ring: `_forget_on_setting_change`).
            ring = load_ring()
            self.ring, self.check_after = ring, float("inf")
            return ring
        with self.lock:
            ring = self.ring
            if ring is not None and time.monotonic() < self.check_after:
                return ring
            interval = float(getattr(settings, "IDP_SIGNING_KEYS_REFRESH_SECONDS", 5))
            try:
                generation = current_generation()
                if ring is None or ring.generation != generation:
                    ring = load_ring(generation)
            except (KeyStoreUnreadable, DatabaseError) as exc:
                if ring is None:
                    raise
                # Keep signing with the keys this process holds; say why once per interval.
                logger.error("signing keys: kept the loaded key ring: %s", exc)
            self.ring, self.check_after = ring, time.monotonic() + interval
            return ring

    def forget(self) -> None:
        with self.lock:
            self.ring, self.check_after = None, 0.0


_provider = _Provider()


def key_ring() -> KeyRing:
    """This process's current keys (read again within `IDP_SIGNING_KEYS_REFRESH_SECONDS` of a
    change in the database)."""
    return _provider.get()


def forget() -> None:
    """Drop this process's key ring: the next use reads the keys again."""
    _provider.forget()


@receiver(setting_changed)
def _forget_on_setting_change(**kwargs: Any) -> None:
    forget()


# --- What the rest of the IdP asks ------------------------------------------------------------


def published_pems() -> list[str]:
    """The published keys: the RSA signing key first, then the next RSA keys, then the previous
    ones; then the EC keys in the same order (what JWKS and SAML metadata publish and
    id_token_hint may use). Only the first key of each kind signs."""
    return list(key_ring().pems_published)


def signing_algorithms() -> list[str]:
    """ID-token algorithms this provider can sign with now (discovery lists them)."""
    ring = key_ring()
    return [RS256] + ([ES256] if ring.signing(ES256) else [])


def signing_pem(algorithm: str) -> str:
    """The private key (PEM) that signs with `algorithm` (RS256 or ES256). HS256 is never used
    (a client secret is stored hashed, so it cannot be an HMAC key), and nothing else is
    offered."""
    if algorithm not in {RS256, ES256, ""}:
        raise ImproperlyConfigured(f"ID tokens are not signed with {algorithm!r}")
    algorithm = algorithm or RS256
    pem = key_ring().signing(algorithm)
    if not pem and algorithm == ES256:
        raise ImproperlyConfigured(
            "A client signs with ES256 but no EC key is configured "
            "(IDP_OIDC_EC_PRIVATE_KEY_FILE, IDP_SIGNING_KEY_DIR/ec, or a database key: "
            "`manage.py rotate_signing_key --auto --algorithm ES256`)."
        )
    return pem


def published_public_key(kid: str) -> tuple[Any, str] | None:
    """(public key, algorithm) of the published key with this `kid` — signing, next or
    previous — for verifying a JWT we signed (RFC 9068 access tokens), or None."""
    for pem in key_ring().pems_published:
        if key_id(pem) == kid:
            return load_private_key(pem).public_key(), key_algorithm(pem)
    return None


def sign_jwt(claims: dict[str, Any], *, algorithm: str, typ: str = "JWT") -> str:
    """`claims` as a compact JWS signed with the signing key for `algorithm`, `kid` in the
    header.

    PyJWT over the loaded `cryptography` key rather than jwcrypto: jwcrypto builds a header
    registry per token, which cost as much as the RS256 signature itself (0.46 vs 0.27 ms of
    CPU per RS256 ID token, 0.11 vs 0.04 ms ES256). Verification stays on jwcrypto
    (`keys.verification_key`).
    """
    pem = signing_pem(algorithm)
    alg = ES256 if algorithm == ES256 else RS256
    return pyjwt.encode(
        claims, load_private_key(pem), algorithm=alg, headers={"kid": key_id(pem), "typ": typ}
    )
