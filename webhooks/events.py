"""The events a subscriber can receive: each audit event type under a public name, and the
versioned payload (docs/guides/webhooks.md lists them; a test keeps that list whole).

The public names are a contract with other systems, kept apart from the audit log's own type
names so either can be read without the other; `PAYLOAD_VERSION` changes only when a payload's
shape changes incompatibly.
"""

from __future__ import annotations

import json
from typing import Any

from accounts.models import AuditEvent

PAYLOAD_VERSION = 1
T = AuditEvent.Type

# Audit event type → public event type.
EVENT_TYPES: dict[str, str] = {
    T.LOGIN_SUCCEEDED: "user.signed_in",
    T.LOGIN_FAILED: "user.sign_in_failed",
    T.LOGOUT: "user.signed_out",
    T.ACCOUNT_LOCKED: "user.locked",
    T.ACCOUNT_UNLOCKED: "user.unlocked",
    T.PASSWORD_CHANGED: "user.password_changed",
    T.PASSWORD_RESET_REQUESTED: "user.password_reset_requested",
    T.PASSWORD_RESET: "user.password_reset",
    T.PASSWORD_RESET_FORCED: "user.password_reset_forced",
    T.MFA_CHANGED: "user.mfa_changed",
    T.USER_CREATED: "user.created",
    T.USER_CHANGED: "user.changed",
    T.USER_DEACTIVATED: "user.deactivated",
    T.USER_ACTIVATED: "user.activated",
    T.USER_DELETED: "user.deleted",
    T.STAFF_GRANTED: "user.staff_granted",
    T.STAFF_REVOKED: "user.staff_revoked",
    T.SUPERUSER_GRANTED: "user.superuser_granted",
    T.SUPERUSER_REVOKED: "user.superuser_revoked",
    T.SESSIONS_ENDED: "user.sessions_ended",
    T.USERS_IMPORTED: "users.imported",
    T.CLIENT_CREATED: "client.created",
    T.CLIENT_CHANGED: "client.changed",
    T.CLIENT_SECRET_ROTATED: "client.secret_rotated",
    T.CLIENT_DISABLED: "client.disabled",
    T.CLIENT_ENABLED: "client.enabled",
    T.CLIENT_DELETED: "client.deleted",
    T.CONSENT_GRANTED: "consent.granted",
    T.CONSENT_DENIED: "consent.denied",
    T.CONSENT_REVOKED: "consent.revoked",
    T.TOKENS_ISSUED: "token.issued",
    T.TOKEN_REVOKED: "token.revoked",
    T.TOKEN_REPLAY: "token.replay_detected",
    T.ACCESS_DENIED: "app.access_denied",
    T.SAML_ASSERTION_ISSUED: "saml.assertion_issued",
    T.GROUP_CREATED: "group.created",
    T.GROUP_CHANGED: "group.changed",
    T.GROUP_PARENT_CHANGED: "group.moved",
    T.GROUP_DELETED: "group.deleted",
    T.GROUP_MEMBER_ADDED: "group.member_added",
    T.GROUP_MEMBER_REMOVED: "group.member_removed",
    T.SIGNING_KEY_ROTATED: "signing_key.rotated",
    T.SIGNING_KEY_ROTATION_FAILED: "signing_key.rotation_failed",
    T.BRANDING_CHANGED: "branding.changed",
    T.ADMIN_REFUSED: "admin.action_refused",
    T.WEBHOOK_CREATED: "webhook.created",
    T.WEBHOOK_CHANGED: "webhook.changed",
    T.WEBHOOK_REPLAYED: "webhook.replayed",
    T.DEVICE_CODE_ISSUED: "device.code_issued",
    T.DEVICE_APPROVED: "device.approved",
    T.DEVICE_DENIED: "device.denied",
    T.DEVICE_CODE_REFUSED: "device.code_refused",
    T.UPSTREAM_SIGNED_IN: "upstream.signed_in",
    T.UPSTREAM_REFUSED: "upstream.refused",
    T.IDENTITY_LINKED: "identity.linked",
    T.IDENTITY_UNLINKED: "identity.unlinked",
    T.UPSTREAM_PROVIDER_CHANGED: "upstream.provider_changed",
    T.PROVISIONING_CONFIGURED: "provisioning.configured",
    T.PROVISIONING_SENT: "provisioning.sent",
    T.PROVISIONING_FAILED: "provisioning.failed",
}
PUBLIC_TYPES = tuple(sorted(set(EVENT_TYPES.values())))


def _person(user_id: int | None, username: str) -> dict[str, Any] | None:
    if user_id is None and not username:
        return None
    return {"id": user_id, "username": username}


def build_payload(event: AuditEvent, *, public_type: str) -> str:
    """The JSON body of one message (compact, keys sorted: the bytes that are signed)."""
    payload = {
        "type": public_type,
        "version": PAYLOAD_VERSION,
        "timestamp": event.created_at.isoformat(),
        "data": {
            "id": event.pk,
            "audit_type": str(event.type),
            "actor": _person(event.actor_id, event.actor_repr),
            "subject": _person(event.subject_id, event.subject_repr),
            "client": {"client_id": event.client_repr} if event.client_repr else None,
            "ip": event.ip,
            "user_agent": event.user_agent,
            "details": event.extra,
        },
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
