"""Signing keys (ID tokens, SAML assertions): read from env or a key directory; dev generates one.

Imported by settings, so it must not touch Django models. Layout of the key directory:
`<unix-time>.pem` files, RSA private keys (PKCS#8 PEM, file mode 0600). The newest signs; older
ones stay published in JWKS (so tokens they signed still verify) until removed by rotation.
The `ec/` subdirectory holds EC P-256 keys in the same layout, for clients whose `algorithm` is
ES256 (RFC 7518 §3.4); RS256 stays the default. Both kinds are published in JWKS, each with its
own `kid`.

A rollover in two steps publishes the next key before it signs, so an app that caches our JWKS
or SAML metadata already trusts it when it starts signing: `next-<unix-time>.pem` (beside the
others, a flat name so a Kubernetes Secret can hold it) is staged, published but never signing;
activating it renames it to `<unix-time>.pem` of the activation, which makes it the newest key
and retires the one before (`manage.py rotate_signing_key --stage`, `--activate`, `--retire`).
From the environment the same three roles are `IDP_OIDC_PRIVATE_KEY`,
`IDP_OIDC_NEXT_PRIVATE_KEY` and `IDP_OIDC_PREVIOUS_PRIVATE_KEY` (each also as `..._FILE`, and
with `EC_` after `OIDC_` for the ES256 key).

These are the settings-time keys and the pure helpers (kid, JWK, certificates' inputs). What a
process signs and publishes with at any moment, these or the database's keys, is asked of
`oauth_clients/key_store.py` (`published_pems`, `signing_pem`, `sign_jwt`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto import jwk

RS256 = "RS256"
ES256 = "ES256"
EC_KEY_SUBDIR = "ec"
STAGED_PREFIX = "next-"


def generate_rsa_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def generate_ec_private_key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def kind_directory(key_dir: Path, algorithm: str = RS256) -> Path:
    """Where the keys of `algorithm` live: `key_dir` itself for RSA, its `ec/` for ES256."""
    return key_dir / EC_KEY_SUBDIR if algorithm == ES256 else key_dir


def _write_private_key(path: Path, algorithm: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            generate_ec_private_key_pem() if algorithm == ES256 else generate_rsa_private_key_pem()
        )


def write_new_key(key_dir: Path, *, algorithm: str = RS256) -> Path:
    """Write a fresh key that becomes the active (newest) one; returns its path. ES256 keys go
    to the `ec/` subdirectory of `key_dir`."""
    key_dir = kind_directory(key_dir, algorithm)
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / f"{time.time_ns()}.pem"
    _write_private_key(path, algorithm)
    return path


def write_staged_key(key_dir: Path, *, algorithm: str = RS256) -> Path:
    """Write a fresh next key: published from the next process start, signing only once
    activated (`activate_staged_key`). Returns its path."""
    key_dir = kind_directory(key_dir, algorithm)
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / f"{STAGED_PREFIX}{time.time_ns()}.pem"
    _write_private_key(path, algorithm)
    return path


def activate_staged_key(staged: Path) -> Path:
    """Make a staged key the newest (signing) one: renamed to `<now>.pem`, so the key before it
    counts as retired from now (`prune_keys`). The same key, so the same `kid` and certificate
    the apps already hold. Returns the new path."""
    active = staged.parent / f"{time.time_ns()}.pem"
    # A rename within one directory is atomic: a reader sees the key staged or active, never both.
    os.rename(staged, active)
    return active


def _stamp(path: Path) -> int:
    stem = path.stem.removeprefix(STAGED_PREFIX)
    return int(stem) if stem.isdigit() else 0


def key_files(key_dir: Path) -> list[Path]:
    """Key files that sign or signed (not the staged ones), newest first."""
    if not key_dir.is_dir():
        return []
    files = [p for p in key_dir.glob("*.pem") if not p.name.startswith(STAGED_PREFIX)]
    return sorted(files, key=_stamp, reverse=True)


def staged_key_files(key_dir: Path) -> list[Path]:
    """Staged (next) key files, newest first."""
    if not key_dir.is_dir():
        return []
    return sorted(key_dir.glob(f"{STAGED_PREFIX}*.pem"), key=_stamp, reverse=True)


def read_signing_keys(
    *,
    key_dir: Path,
    env_pem: str = "",
    generate: bool = False,
    algorithm: str = RS256,
    read_directory: bool = True,
) -> list[str]:
    """PEM strings, active key first (staged keys not included). `env_pem` (from the
    environment) wins as the active key. ES256 keys are read from (and generated in) the `ec/`
    subdirectory; with `read_directory` off (the database store), from the environment only."""
    files_dir = kind_directory(key_dir, algorithm)
    if generate and not env_pem and not key_files(files_dir):
        write_new_key(key_dir, algorithm=algorithm)
    pems = [p.read_text() for p in key_files(files_dir)] if read_directory else []
    if env_pem:
        pems = [_unescape(env_pem), *[p for p in pems if p.strip() != env_pem.strip()]]
    return pems


def _unescape(pem: str) -> str:
    # A PEM in a one-line environment value has its newlines written as `\n`.
    return pem.replace("\\n", "\n")


ENV_VARIABLES = {RS256: "IDP_OIDC_PRIVATE_KEY", ES256: "IDP_OIDC_EC_PRIVATE_KEY"}


def env_variable(algorithm: str, role: str = "") -> str:
    """The environment variable of a key: role "" (signing), "NEXT" or "PREVIOUS";
    `IDP_OIDC_NEXT_PRIVATE_KEY`, `IDP_OIDC_EC_PREVIOUS_PRIVATE_KEY`, ..."""
    name = ENV_VARIABLES[algorithm]
    return name.replace("_PRIVATE_KEY", f"_{role}_PRIVATE_KEY") if role else name


def env_pem(environ: Mapping[str, str], variable: str) -> str:
    """The PEM in the file `<variable>_FILE` names, else the value of `variable` (or "")."""
    from django.core.exceptions import ImproperlyConfigured

    path = environ.get(f"{variable}_FILE", "")
    if not path:
        return environ.get(variable, "")
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"{variable}_FILE {path}: {exc.strerror}") from None


def keys_from_environment(environ: Mapping[str, str], algorithm: str = RS256) -> bool:
    """Whether the signing key of `algorithm` is set in the environment (then it wins over the
    key directory, and rotation is done by changing the environment)."""
    variable = env_variable(algorithm)
    return bool(environ.get(f"{variable}_FILE") or environ.get(variable))


@dataclass(frozen=True)
class KeySet:
    """One kind of key (RS256 or ES256) as a process reads it at start."""

    current: str  # signs ("" when none is configured)
    previous: tuple[str, ...]  # published, signed before (newest first)
    next: tuple[str, ...]  # staged: published, signs once activated

    @property
    def signing_and_previous(self) -> list[str]:
        return [self.current, *self.previous] if self.current else []


def read_key_set(
    *,
    key_dir: Path,
    environ: Mapping[str, str],
    generate: bool = False,
    algorithm: str = RS256,
    read_directory: bool = True,
) -> KeySet:
    """The keys of `algorithm`: the signing key from the environment or the newest key file;
    the previous ones (`..._PREVIOUS_PRIVATE_KEY` and older key files); the staged ones
    (`..._NEXT_PRIVATE_KEY` and `next-*.pem`). A key listed twice counts once, in its most
    advanced role (signing, then next, then previous)."""
    pems = read_signing_keys(
        key_dir=key_dir,
        env_pem=env_pem(environ, env_variable(algorithm)),
        generate=generate,
        algorithm=algorithm,
        read_directory=read_directory,
    )
    current = pems[0] if pems else ""
    files_dir = kind_directory(key_dir, algorithm)
    staged = [env_pem(environ, env_variable(algorithm, "NEXT"))]
    if read_directory:
        staged += [path.read_text() for path in staged_key_files(files_dir)]
    previous = [env_pem(environ, env_variable(algorithm, "PREVIOUS")), *pems[1:]]
    seen = {current.strip()}
    next_keys: list[str] = []
    previous_keys: list[str] = []
    for pem, into in [*((p, next_keys) for p in staged), *((p, previous_keys) for p in previous)]:
        pem = _unescape(pem)
        if pem.strip() and pem.strip() not in seen:
            seen.add(pem.strip())
            into.append(pem)
    return KeySet(current=current, previous=tuple(previous_keys), next=tuple(next_keys))


def key_created_at(path: Path) -> float:
    """Unix time a key file was written (its name is `time.time_ns()` at creation)."""
    return int(path.stem) / 1e9 if path.stem.isdigit() else path.stat().st_mtime


def prune_keys(key_dir: Path, *, older_than_seconds: float, now: float | None = None) -> list[Path]:
    """Delete keys retired more than `older_than_seconds` ago; never the newest (signing) one.

    A key is retired when the next newer key was written (it signs from the next process
    start), so its last tokens expire at most one ID-token lifetime after that: callers pass at
    least the longest ID-token lifetime. Returns the removed paths.
    """
    now = time.time() if now is None else now
    files = key_files(key_dir)
    removed = []
    for newer, path in itertools.pairwise(files):
        if now - key_created_at(newer) > older_than_seconds:
            path.unlink()
            removed.append(path)
    return removed


@functools.lru_cache(maxsize=64)
def _jwk(pem: str) -> jwk.JWK:
    return jwk.JWK.from_pem(pem.encode("ascii"))


@functools.lru_cache(maxsize=64)
def key_id(pem: str) -> str:
    """The `kid` of a key: its RFC 7638 thumbprint, the value DOT puts in the ID-token header.
    Cached: discovery and JWKS fingerprint the key set on every request (profile finding)."""
    return _jwk(pem).thumbprint()


def key_algorithm(pem: str) -> str:
    """RS256 for an RSA key, ES256 for an EC P-256 key (RFC 7518 §3.1)."""
    return ES256 if _jwk(pem).get("kty") == "EC" else RS256


def public_jwk(pem: str) -> dict[str, str]:
    """The public half of a signing key as published in JWKS (RFC 7517 §4), with its `kid`."""
    key = _jwk(pem)
    data: dict[str, str] = {"alg": key_algorithm(pem), "use": "sig", "kid": key_id(pem)}
    data.update(key.export_public(as_dict=True))
    return data


def jwks_document(pems: list[str]) -> dict[str, list[dict[str, str]]]:
    """The JWK Set of every published key, signing key first."""
    return {"keys": [public_jwk(pem) for pem in pems]}


def keys_fingerprint(pems: list[str]) -> str:
    """Changes whenever the published key set changes (cache keys, ETags)."""
    return hashlib.sha256("\n".join(key_id(pem) for pem in pems).encode()).hexdigest()[:32]


def verification_key(pems: list[str], kid: str | None) -> jwk.JWK | None:
    """The published key with this `kid` (any key still in JWKS, not only the signing one);
    without a `kid`, the signing key."""
    for pem in pems:
        if kid is None or key_id(pem) == kid:
            return _jwk(pem)
    return None


@functools.lru_cache(maxsize=64)
def load_private_key(pem: str) -> Any:
    """The `cryptography` private key of a PEM (cached: loading an RSA key costs more than a
    signature)."""
    return serialization.load_pem_private_key(pem.encode("ascii"), password=None)
