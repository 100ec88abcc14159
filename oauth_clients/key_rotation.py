"""The database signing keys' schedule: next → active → retired → removed, each step audited.

A key is published as `next` (JWKS and SAML metadata) at least `IDP_SIGNING_KEY_PREPUBLISH_SECONDS`
before it signs, so every app that caches our keys holds it when it starts signing; it signs
(`active`) for `IDP_SIGNING_KEY_ROTATION_SECONDS`; then it is `retired`: still published until
the longest token it can have signed has expired (`longest_token_lifetime`), then `removed`
(unpublished, its private part wiped). `tick` takes whichever of these steps are due;
`manage.py rotate_signing_key --auto` runs it, and the background worker every
`IDP_SIGNING_KEY_AUTO_INTERVAL` seconds (oauth_clients/tasks.py; deploy/README.md),
and the command's `--stage`, `--activate`, `--retire`, `--discard` and one-step rotation call
the single steps below. Each step is one transaction with its `signing_key.rotated` audit row
(`step`: create, import, stage, activate, rotate, retire, discard) and, once committed, a new
generation that every process picks up within seconds (`oauth_clients/key_store.py`).
`reencrypt_keys` (`--reencrypt`) completes a change of the key-encryption key.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from oauth2_provider.settings import oauth2_settings

from accounts.audit import record_event
from accounts.models import AuditEvent
from oauth_clients.key_store import (
    KeyStoreUnreadable,
    decrypt_private_key,
    encrypt_private_key,
    encryption_key_errors,
    publish_generation,
    reencrypt_private_key,
)
from oauth_clients.keys import (
    ES256,
    RS256,
    generate_ec_private_key_pem,
    generate_rsa_private_key_pem,
    key_id,
    read_key_set,
)
from oauth_clients.models import Client, SigningKey

logger = logging.getLogger(__name__)

STEP_CREATE, STEP_IMPORT, STEP_STAGE, STEP_ACTIVATE = "create", "import", "stage", "activate"
STEP_ROTATE, STEP_RETIRE, STEP_DISCARD = "rotate", "retire", "discard"
STEP_REENCRYPT = "reencrypt"
State = SigningKey.State


class KeyRotationError(Exception):
    """A step that cannot be taken now, with the reason and what to do instead."""


def longest_token_lifetime() -> int:
    """Seconds the longest token we sign can live: ID tokens (the default and each client's)
    and RFC 9068 access tokens of APIs (each API's access-token lifetime; its default, 300 s
    in oauth_clients/oidc/jwt_access.py, is below the ID-token default)."""
    lifetimes = Client.objects.aggregate(
        id_token=Max("id_token_lifetime"),
    )
    api = Client.objects.filter(kind=Client.Kind.API).aggregate(access=Max("access_token_lifetime"))
    return max(
        int(oauth2_settings.ID_TOKEN_EXPIRE_SECONDS),
        int(lifetimes["id_token"] or 0),
        int(api["access"] or 0),
    )


def _new_pem(algorithm: str) -> str:
    return generate_ec_private_key_pem() if algorithm == ES256 else generate_rsa_private_key_pem()


def _require_encryption_key() -> None:
    problems = encryption_key_errors()
    if problems:
        raise KeyRotationError("; ".join(problems) + " (docs: deploy/README.md).")


def _store(pem: str, *, algorithm: str, state: str, now: datetime) -> SigningKey:
    return SigningKey.objects.create(
        kid=key_id(pem),
        algorithm=algorithm,
        state=state,
        encrypted_private_key=encrypt_private_key(pem),
        created_at=now,
        activated_at=now if state == State.ACTIVE else None,
        retired_at=now if state == State.RETIRED else None,
        changed_at=now,
    )


def _one(algorithm: str, state: str) -> SigningKey | None:
    # Locked inside a step's transaction (PostgreSQL): two runs at once (cron overlapping an
    # operator) take the step one after the other, the second seeing the first's result.
    rows = SigningKey.objects.filter(algorithm=algorithm, state=state)
    if transaction.get_connection().in_atomic_block:
        rows = rows.select_for_update()
    return rows.first()


def _active_or_refuse(algorithm: str) -> SigningKey:
    active = _one(algorithm, State.ACTIVE)
    if active is None:
        raise KeyRotationError(
            f"No {algorithm} key is active in the database: nothing to rotate from. Run "
            f"`manage.py rotate_signing_key --auto --algorithm {algorithm}` to create the first "
            "one (or import the key directory's)."
        )
    return active


def _audit(step: str, algorithm: str, **fields: Any) -> None:
    record_event(
        type=AuditEvent.Type.SIGNING_KEY_ROTATED,
        step=step,
        algorithm=algorithm,
        source="database",
        **fields,
    )


def _after_change() -> None:
    transaction.on_commit(publish_generation)


def _check_readable(row: SigningKey) -> None:
    """Refuse to build on a key that does not decrypt (raises KeyRotationError)."""
    try:
        decrypt_private_key(row)
    except KeyStoreUnreadable as exc:
        raise KeyRotationError(str(exc)) from None


@transaction.atomic
def create_first_key(*, algorithm: str, now: datetime | None = None) -> list[SigningKey]:
    """The first database key of `algorithm`: the key directory's keys imported as they are
    (the signing key stays active, so its kid, its tokens and the apps' caches stay good; staged
    keys stay next; previous keys are retired from now), else a new active key."""
    _require_encryption_key()
    now = now or timezone.now()
    if SigningKey.objects.filter(algorithm=algorithm).exclude(state=State.REMOVED).exists():
        raise KeyRotationError(f"The database already holds {algorithm} keys.")
    found = read_key_set(
        key_dir=settings.IDP_SIGNING_KEY_DIR, environ={}, algorithm=algorithm, generate=False
    )
    rows: list[SigningKey] = []
    if found.current:
        rows.append(_store(found.current, algorithm=algorithm, state=State.ACTIVE, now=now))
        rows += [_store(p, algorithm=algorithm, state=State.NEXT, now=now) for p in found.next[:1]]
        rows += [
            _store(p, algorithm=algorithm, state=State.RETIRED, now=now) for p in found.previous
        ]
        _audit(
            STEP_IMPORT,
            algorithm,
            new_kid=rows[0].kid,
            imported=[row.kid for row in rows],
            key_dir=str(settings.IDP_SIGNING_KEY_DIR),
        )
    else:
        rows.append(_store(_new_pem(algorithm), algorithm=algorithm, state=State.ACTIVE, now=now))
        _audit(STEP_CREATE, algorithm, new_kid=rows[0].kid)
    _after_change()
    return rows


@transaction.atomic
def stage_next_key(*, algorithm: str, now: datetime | None = None) -> SigningKey:
    """Publish a new key as `next` (not signing yet)."""
    _require_encryption_key()
    now = now or timezone.now()
    _active_or_refuse(algorithm)
    staged = _one(algorithm, State.NEXT)
    if staged is not None:
        raise KeyRotationError(
            f"A next {algorithm} key is already published (kid {staged.kid}): activate it "
            "(--activate) or discard it (--discard) first."
        )
    try:
        row = _store(_new_pem(algorithm), algorithm=algorithm, state=State.NEXT, now=now)
    except IntegrityError as exc:  # another run staged one at the same moment
        raise KeyRotationError(f"A next {algorithm} key was staged meanwhile.") from exc
    _audit(STEP_STAGE, algorithm, staged_kid=row.kid)
    _after_change()
    return row


@transaction.atomic
def activate_next_key(
    *, algorithm: str, force: bool = False, now: datetime | None = None
) -> SigningKey:
    """The next key signs from now; the active one is retired (still published)."""
    now = now or timezone.now()
    active = _active_or_refuse(algorithm)
    staged = _one(algorithm, State.NEXT)
    if staged is None:
        raise KeyRotationError(f"No next {algorithm} key is published: --stage one first.")
    _check_readable(staged)
    waited = (now - staged.created_at).total_seconds()
    cache_lifetime = int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS)
    if waited < cache_lifetime and not force:
        raise KeyRotationError(
            f"The next key was published {int(waited)} seconds ago; apps cache our JWKS for up "
            f"to {cache_lifetime} seconds. Wait, or pass --force."
        )
    _retire(active, now)
    staged.state, staged.activated_at, staged.changed_at = State.ACTIVE, now, now
    staged.save(update_fields=["state", "activated_at", "changed_at"])
    _audit(STEP_ACTIVATE, algorithm, new_kid=staged.kid, previous_kid=active.kid)
    _after_change()
    return staged


def _retire(row: SigningKey, now: datetime) -> None:
    row.state, row.retired_at, row.changed_at = State.RETIRED, now, now
    # Saved before the next key becomes active: one active key per algorithm (constraint).
    row.save(update_fields=["state", "retired_at", "changed_at"])


@transaction.atomic
def rotate_now(*, algorithm: str, now: datetime | None = None) -> SigningKey:
    """A new key signs at once, without being published ahead (a key thought compromised):
    apps that cached our JWKS fetch it again on the unknown kid. The old key is retired."""
    _require_encryption_key()
    now = now or timezone.now()
    active = _active_or_refuse(algorithm)
    _retire(active, now)
    row = _store(_new_pem(algorithm), algorithm=algorithm, state=State.ACTIVE, now=now)
    _audit(STEP_ROTATE, algorithm, new_kid=row.kid, previous_kid=active.kid)
    _after_change()
    return row


@transaction.atomic
def discard_next_key(*, algorithm: str, now: datetime | None = None) -> SigningKey:
    """Unpublish a next key that will not be activated."""
    now = now or timezone.now()
    staged = _one(algorithm, State.NEXT)
    if staged is None:
        raise KeyRotationError(f"No next {algorithm} key is published.")
    _remove(staged, now)
    _audit(STEP_DISCARD, algorithm, discarded_kid=staged.kid)
    _after_change()
    return staged


def _remove(row: SigningKey, now: datetime) -> None:
    row.state, row.removed_at, row.changed_at = State.REMOVED, now, now
    row.encrypted_private_key = ""
    row.save(update_fields=["state", "removed_at", "changed_at", "encrypted_private_key"])


@transaction.atomic
def remove_retired_keys(*, algorithm: str, now: datetime | None = None) -> list[SigningKey]:
    """Unpublish the retired keys whose last tokens have expired (retired longer ago than
    `longest_token_lifetime`)."""
    now = now or timezone.now()
    window = longest_token_lifetime()
    due = list(
        SigningKey.objects.filter(
            algorithm=algorithm,
            state=State.RETIRED,
            retired_at__lte=now - timedelta(seconds=window),
        )
    )
    for row in due:
        _remove(row, now)
    if due:
        _audit(STEP_RETIRE, algorithm, removed_kids=[row.kid for row in due], window=window)
        _after_change()
    return due


@transaction.atomic
def reencrypt_keys() -> list[SigningKey]:
    """Every stored key encrypted again under the first `IDP_KEY_ENCRYPTION_KEY` (the step that
    completes a change of the key-encryption key; the old one can then leave the list). The
    keys themselves do not change, so no process needs to read them again."""
    _require_encryption_key()
    rows = list(SigningKey.objects.exclude(state=State.REMOVED).select_for_update())
    for row in rows:
        try:
            row.encrypted_private_key = reencrypt_private_key(row)
        except KeyStoreUnreadable as exc:
            raise KeyRotationError(str(exc)) from None
        row.save(update_fields=["encrypted_private_key"])
    if rows:
        _audit(STEP_REENCRYPT, "", kids=[row.kid for row in rows])
    return rows


def tick(*, algorithms: list[str] | None = None, now: datetime | None = None) -> list[str]:
    """Take every step the schedule has due (for each algorithm with database keys, and RS256
    always); returns what was done, in words. Safe to run as often as wanted: a step not due
    does nothing.

    A run that cannot take a due step (no key-encryption key, a key that no longer decrypts, a
    staged key without an active one, the database away) writes a `signing_key.rotation_failed`
    audit row with the reason and raises: the background worker's runs are otherwise seen only in
    its log, and a schedule that silently stopped leaves a key signing past its period."""
    if algorithms is None:
        present = set(SigningKey.objects.values_list("algorithm", flat=True).distinct())
        algorithms = [a for a in (RS256, ES256) if a == RS256 or a in present]
    try:
        return _due_steps(algorithms=algorithms, now=now or timezone.now())
    except Exception as exc:
        _audit_failure(exc, algorithms)
        raise


def _audit_failure(exc: Exception, algorithms: list[str]) -> None:
    try:
        record_event(
            type=AuditEvent.Type.SIGNING_KEY_ROTATION_FAILED,
            algorithms=algorithms,
            source="database",
            error=type(exc).__name__,
            reason=str(exc)[:500],
        )
    except Exception:  # the failure itself stays the one raised; this one only goes to the log
        logger.exception("signing key schedule: the failure's audit row was not written")


def _due_steps(*, algorithms: list[str], now: datetime) -> list[str]:
    period = timedelta(seconds=settings.IDP_SIGNING_KEY_ROTATION_SECONDS)
    lead = timedelta(
        seconds=max(
            settings.IDP_SIGNING_KEY_PREPUBLISH_SECONDS,
            int(oauth2_settings.OIDC_JWKS_MAX_AGE_SECONDS),
        )
    )
    done: list[str] = []
    for algorithm in algorithms:
        active = _one(algorithm, State.ACTIVE)
        staged = _one(algorithm, State.NEXT)
        if active is None and staged is None:
            rows = create_first_key(algorithm=algorithm, now=now)
            done.append(f"{algorithm}: first key {rows[0].kid} active ({len(rows)} stored)")
            continue
        if active is None and staged is not None:
            raise KeyRotationError(
                f"No {algorithm} key is active but {staged.kid} is next: activate it with "
                f"`rotate_signing_key --activate --algorithm {algorithm}`."
            )
        assert active is not None
        signed_since = active.activated_at or active.created_at
        if staged is None and now >= signed_since + period - lead:
            staged = stage_next_key(algorithm=algorithm, now=now)
            done.append(f"{algorithm}: next key {staged.kid} published")
        elif (
            staged is not None and now >= signed_since + period and now >= staged.created_at + lead
        ):
            new = activate_next_key(algorithm=algorithm, now=now)
            done.append(f"{algorithm}: key {new.kid} signs, {active.kid} retired")
        for row in remove_retired_keys(algorithm=algorithm, now=now):
            done.append(f"{algorithm}: retired key {row.kid} removed")
    return done
