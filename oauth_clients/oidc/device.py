"""The device authorization grant (RFC 8628): codes, the person's decision, the device's polls.

A command-line tool, TV or kiosk asks the device authorization endpoint for a pair of codes
(`start_device_authorization`), shows the person the short user code and the verification URI,
and polls the token endpoint with the long device code. The person types the user code on the
`/device` page of a browser they trust (`enter_user_code`), signs in as for the code flow and
approves or denies (`approve_device`, `deny_device`). oauthlib's parts of the grant live in
`oauth_clients.oidc.device_grant`; the token side's questions in `token_policy`.

What we do that DOT 3.4.1 does not (its device views store both codes in clear, accept a device
code from any client, never answer `slow_down` and keep no brute-force limit):
- both codes stored as SHA-256 only; user codes from RFC 8628 §6.1's unambiguous alphabet,
  shown as XXXX-XXXX and read whatever the case, dashes or spaces (§3.3);
- wrong user codes counted per address with the house's limiter (allauth's rate limits,
  `ACCOUNT_RATE_LIMITS["device_user_code"]`: past it, a clear refusal), and a code entered
  more than `MAX_ENTRIES` times dies (§5.1);
- polling paced in the shared cache (§3.5: a poll before the interval is up answers
  `slow_down` and adds 5 s for good), so a pending poll costs one indexed query and no write.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from allauth.core import ratelimit
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import AuditEvent
from accounts.sessions import SessionBinding
from oauth_clients.models import Client, DeviceAuthorization
from oauth_clients.oidc.tokens import hash_code

# RFC 8628 §6.1: twenty consonants, no vowels (no words), none that look alike.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
# 20^8 ≈ 2^34.6 codes: with 20 wrong tries per address per window and codes that die within
# minutes, guessing a live one is hopeless (RFC 8628 §5.1 works the same numbers).
USER_CODE_LENGTH = 8
# RFC 8628 §3.5: each `slow_down` adds this many seconds to the interval, for good.
SLOW_DOWN_SECONDS = 5
# A user code entered correctly this many times without a decision dies (RFC 8628 §5.1): the
# person enters it once or twice; more is someone else trying it too.
MAX_ENTRIES = 5
# The house's limiter (allauth's rate limits): the action whose rate ACCOUNT_RATE_LIMITS sets.
RATE_LIMIT_ACTION = "device_user_code"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def generate_user_code() -> str:
    """A new user code, stored form (8 letters of the alphabet, no dash)."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def display_user_code(code: str) -> str:
    """XXXX-XXXX: the form the device shows and the person reads (RFC 8628 §6.1)."""
    half = len(code) // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_user_code(text: Any) -> str | None:
    """The stored form of what a person typed, or None if it cannot be a user code.

    RFC 8628 §6.1: case-insensitive, and the dash (or spaces) the person may type or leave out
    are ignored."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    code = "".join(text.split()).replace("-", "").upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def device_code_lifetime() -> int:
    """Seconds a device code and its user code live (RFC 8628 §3.2 `expires_in`)."""
    return int(settings.IDP_DEVICE_CODE_SECONDS)


def poll_interval() -> int:
    """Seconds a device waits between polls (RFC 8628 §3.2 `interval`)."""
    return int(settings.IDP_DEVICE_POLL_INTERVAL)


def verification_uri() -> str:
    """RFC 8628 §3.2: short, for typing: the issuer's `/device`."""
    return settings.IDP_ISSUER.rstrip("/") + "/device"


def verification_uri_complete(user_code: str) -> str:
    """RFC 8628 §3.3.1: the same page with the code filled in (for a QR code or a link)."""
    return f"{verification_uri()}?user_code={display_user_code(user_code)}"


# ----------------------------------------------------------------------------- the device's side


def start_device_authorization(
    *, client: Client, scopes: list[str], device_code: str, request: HttpRequest | None
) -> tuple[DeviceAuthorization, str]:
    """RFC 8628 §3.1-3.2: store a new device authorization (both codes hashed) and audit it.

    `device_code` is the one oauthlib generated for its response; the user code is drawn here
    until one is free (a collision is rare: 2^34 codes). Returns the row and the clear user code.
    """
    now = timezone.now()
    for _attempt in range(5):
        user_code = generate_user_code()
        try:
            with transaction.atomic():
                device = DeviceAuthorization.objects.create(
                    application=client,
                    device_code=hash_code(device_code),
                    user_code=hash_code(user_code),
                    scope=" ".join(scopes),
                    created_at=now,
                    expires=now + timedelta(seconds=device_code_lifetime()),
                    interval=poll_interval(),
                )
                record_event(
                    type=AuditEvent.Type.DEVICE_CODE_ISSUED,
                    request=request,
                    client=client,
                    scopes=" ".join(scopes),
                )
        except IntegrityError:
            continue  # the user code is taken (by a live or an expired row): draw another
        return device, user_code
    raise RuntimeError("no free user code after 5 draws")  # 2^34 codes: never in practice


@dataclass(frozen=True, slots=True)
class Poll:
    """What one poll of a pending device authorization may be told (RFC 8628 §3.5)."""

    slow_down: bool
    interval: int


def _poll_key(device: DeviceAuthorization) -> str:
    return f"device-poll:{device.device_code}"


def record_poll(*, device: DeviceAuthorization, now: datetime) -> Poll:
    """Note this poll; `slow_down` when it came before the interval since the last one was up
    (the interval then grows by 5 s for this and every later poll, RFC 8628 §3.5).

    Kept in the shared cache until the code expires, not in the row: a poll of a pending code
    then costs one indexed read and no database write. Losing the cache only forgets how
    impatient a device was (its interval starts again from the one it was given)."""
    key = _poll_key(device)
    seen = cache.get(key)
    interval = device.interval
    early = False
    stamp = now.timestamp()
    if isinstance(seen, tuple) and len(seen) == 2:  # (last poll, interval)
        last, interval = seen
        early = stamp - last < interval
        if early:
            interval += SLOW_DOWN_SECONDS
    remaining = max(1, int((device.expires - now).total_seconds()) + 1)
    cache.set(key, (stamp, interval), timeout=remaining)
    return Poll(slow_down=early, interval=interval)


# ----------------------------------------------------------------------------- the person's side


class UserCodeRefused(Exception):
    """The typed user code is not one that can be approved now; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def may_try_user_code(request: HttpRequest) -> bool:
    """Whether this address has wrong user codes to spare (checked before a code is read)."""
    return ratelimit.consume(request, action=RATE_LIMIT_ACTION, dry_run=True)


def _refuse(request: HttpRequest, *, reason: str, client: Client | None = None) -> None:
    record_event(
        type=AuditEvent.Type.DEVICE_CODE_REFUSED,
        request=request,
        subject=getattr(request, "user", None),
        client=client,
        reason=reason,
    )
    raise UserCodeRefused(reason)


def enter_user_code(*, user_code: str, request: HttpRequest) -> DeviceAuthorization:
    """The pending, live device authorization of a user code typed on `/device`, or
    `UserCodeRefused` (audited). A wrong code counts against the address (the house's limiter);
    a right one counts against the code, which dies past `MAX_ENTRIES` (RFC 8628 §5.1)."""
    device, reason = _count_entry(normalize_user_code(user_code))
    if reason:
        if device is None or reason == "code already used":
            ratelimit.consume(request, action=RATE_LIMIT_ACTION)
        _refuse(request, reason=reason, client=device.application if device else None)
    assert device is not None  # for the type checker: no reason means a device
    return device


@transaction.atomic
def _count_entry(code: str | None) -> tuple[DeviceAuthorization | None, str]:
    """The code's row counted one entry more (locked, so two entries never count as one), and
    why it is refused ("" when it is not)."""
    if code is None:
        return None, "not a user code"
    device = (
        DeviceAuthorization.objects.select_for_update()
        .select_related("application")
        .filter(user_code=hash_code(code))
        .first()
    )
    now = timezone.now()
    if device is None or device.is_expired(now) or not device.application.is_usable(None):
        return None, "unknown or expired code"
    if device.status != DeviceAuthorization.Status.PENDING:
        return device, "code already used"
    device.entries += 1
    if device.entries > MAX_ENTRIES:
        # The code dies: the device is told `expired_token` and starts again.
        device.expires = now
        device.save(update_fields=["entries", "expires"])
        return device, "code entered too many times"
    device.save(update_fields=["entries"])
    return device, ""


def pending_device(pk: Any) -> DeviceAuthorization | None:
    """A pending, live device authorization by id (what `/device` keeps in the session)."""
    if not isinstance(pk, int):
        return None
    device = (
        DeviceAuthorization.objects.select_related("application")
        .filter(pk=pk, status=DeviceAuthorization.Status.PENDING)
        .first()
    )
    if device is None or device.is_expired() or not device.application.is_usable(None):
        return None
    return device


def _auth_time(binding: SessionBinding) -> datetime | None:
    return (
        datetime.fromtimestamp(int(binding.auth_time), tz=UTC)
        if binding.auth_time is not None
        else None
    )


@transaction.atomic
def approve_device(
    *, device: DeviceAuthorization, user: Any, binding: SessionBinding, request: HttpRequest
) -> bool:
    """The person approved (RFC 8628 §3.3): the device's next poll gets tokens for them, with
    this sign-in's `auth_time`, `amr` and `acr`. False when it was decided or expired meanwhile."""
    now = timezone.now()
    updated = DeviceAuthorization.objects.filter(
        pk=device.pk, status=DeviceAuthorization.Status.PENDING, expires__gt=now
    ).update(
        status=DeviceAuthorization.Status.APPROVED,
        user=user,
        decided_at=now,
        auth_time=_auth_time(binding),
        amr=list(binding.amr),
        acr=binding.acr,
    )
    if updated:
        record_event(
            type=AuditEvent.Type.DEVICE_APPROVED,
            request=request,
            actor=user,
            subject=user,
            client=device.application,
            scopes=device.scope,
        )
    return bool(updated)


@transaction.atomic
def deny_device(*, device: DeviceAuthorization, user: Any, request: HttpRequest) -> bool:
    """The person said it was not them (RFC 8628 §3.5 `access_denied` for the device)."""
    now = timezone.now()
    updated = DeviceAuthorization.objects.filter(
        pk=device.pk, status=DeviceAuthorization.Status.PENDING
    ).update(status=DeviceAuthorization.Status.DENIED, user=user, decided_at=now)
    if updated:
        record_event(
            type=AuditEvent.Type.DEVICE_DENIED,
            request=request,
            actor=user,
            subject=user,
            client=device.application,
            scopes=device.scope,
        )
    return bool(updated)
