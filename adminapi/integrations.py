"""/api/v1/webhooks/, /api/v1/scim-tokens/ and /api/v1/provisioning-targets/: the integrations
the admin and `manage.py webhooks`/`scim_token`/`provision` manage, through the same services
(webhooks.services, scim.services, provisioning.services: each validates and writes the audit
row, the service client as actor).

A secret is answered once, when it is made (a webhook's signing secret, a SCIM token); nothing
answers a stored one, nor an app's SCIM bearer token (write-only).

No escalation through an integration: a webhook receives the audit stream, so choosing what
one receives also needs the audit log's read scope; a SCIM token acts on people and groups, so
issuing one also needs `admin:users` (`admin:users:read` for a read-only token); a provisioning
target sends people's profiles to an app, so setting one also needs `admin:users:read`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status

from adminapi import cursor
from adminapi.auth import ServiceClientAuth, insufficient_scope
from adminapi.problems import Problem, from_validation_error
from adminapi.schemas import (
    DryRunOut,
    ProblemOut,
    ProvisioningTargetIn,
    ProvisioningTargetOut,
    ProvisioningTargetPage,
    ScimTokenCreate,
    ScimTokenIssued,
    ScimTokenOut,
    ScimTokenPage,
    SecretOut,
    SyncOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookPage,
    WebhookUpdate,
)
from oauth_clients.models import Client
from provisioning import services as provisioning_services
from provisioning.models import ScimTarget
from provisioning.planning import plan_target, target_is_live
from scim import services as scim_services
from scim.models import ScimToken
from webhooks import services as webhook_services
from webhooks.models import Subscriber

webhooks_router = Router(auth=ServiceClientAuth("integrations"), tags=["webhooks"])
scim_tokens_router = Router(auth=ServiceClientAuth("integrations"), tags=["scim-tokens"])
targets_router = Router(auth=ServiceClientAuth("integrations"), tags=["provisioning"])

ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 403, 404, 405, 409, 413, 415, 429), ProblemOut)


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _require_one_of(request: HttpRequest, *scopes: str) -> None:
    """403 unless the token carries one of `scopes` (the first is the one named)."""
    if not any(_actor(request).has_scope(scope) for scope in scopes):
        raise insufficient_scope(scopes[0])


def _not_found(what: str, key: object) -> Problem:
    return Problem(HTTPStatus.NOT_FOUND, f"No {what} {key}.", code="not-found")


def _page(queryset: Any, *, listing: str, cursor_: str | None, limit: int) -> tuple[list[Any], Any]:
    return cursor.page(
        queryset,
        listing=listing,
        fields=("pk",),
        cursor=cursor_,
        limit=limit,
        key_of=lambda row: [row.pk],
        parse_key=lambda key: [int(key[0])],
    )


# --- Webhooks

# The webhook service's refusals by code, as the field the client sent.
WEBHOOK_FIELD_FOR_CODE = {
    "invalid_url": "url",
    "required": "event_types",
    "unknown_event_type": "event_types",
}


@contextmanager
def _webhook_fields() -> Iterator[None]:
    """The service's own URL and event-type checks (webhooks.services `clean_url`,
    `clean_event_types`) as a 400 problem naming the field."""
    try:
        yield
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise
        raise from_validation_error(
            ValidationError(
                {
                    WEBHOOK_FIELD_FOR_CODE.get(error.code or "", ""): [error]
                    for error in exc.error_list
                }
            )
        ) from exc


def webhook_out(subscriber: Subscriber) -> dict[str, Any]:
    return {field: getattr(subscriber, field) for field in WebhookOut.model_fields}


def _webhook(webhook_id: int) -> Subscriber:
    subscriber = Subscriber.objects.filter(pk=webhook_id).first()
    if subscriber is None:
        raise _not_found("webhook with id", webhook_id)
    return subscriber


def _may_choose_events(request: HttpRequest) -> None:
    _require_one_of(request, "admin:audit:read", "admin:audit")


@webhooks_router.get("/", response={200: WebhookPage, **ERRORS}, summary="List webhooks")
def list_webhooks(
    request: HttpRequest,
    is_active: bool | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    """Newest first; never a secret."""
    subscribers = Subscriber.objects.all()
    if is_active is not None:
        subscribers = subscribers.filter(is_active=is_active)
    rows, next_cursor = _page(subscribers, listing="webhooks", cursor_=cursor_, limit=limit)
    return {"items": [webhook_out(row) for row in rows], "next_cursor": next_cursor}


@webhooks_router.post("/", response={201: WebhookCreated, **ERRORS}, summary="Add a webhook")
def create_webhook(request: HttpRequest, payload: WebhookCreate) -> Any:
    """The signing secret (`whsec_...`) is in this answer only. The URL must be https (http
    only on loopback) and, unless `allow_private_network`, on no private address; the
    receiver is called through the SSRF-safe sender, which never follows a redirect. Needs
    `admin:audit:read` too: the webhook receives the audit stream."""
    _may_choose_events(request)
    with _webhook_fields():
        subscriber, secret = webhook_services.create_subscriber(
            name=payload.name,
            url=payload.url,
            event_types=payload.event_types,
            allow_private_network=payload.allow_private_network,
            actor=_actor(request),
            request=request,
        )
    return Status(HTTPStatus.CREATED, {"webhook": webhook_out(subscriber), "secret": secret})


@webhooks_router.get("/{webhook_id}", response={200: WebhookOut, **ERRORS}, summary="Read")
def read_webhook(request: HttpRequest, webhook_id: int) -> Any:
    return webhook_out(_webhook(webhook_id))


@webhooks_router.patch("/{webhook_id}", response={200: WebhookOut, **ERRORS}, summary="Change")
def update_webhook(request: HttpRequest, webhook_id: int, payload: WebhookUpdate) -> Any:
    """Only the fields sent change: `name`, `url` (the rules of a new one), `event_types`,
    `is_active` (false: nothing is sent; messages queued meanwhile are marked failed)."""
    subscriber = _webhook(webhook_id)
    changes = payload.model_dump(exclude_unset=True)
    if changes.get("event_types") is not None or changes.get("url") is not None:
        _may_choose_events(request)
    with _webhook_fields():
        webhook_services.update_subscriber(
            subscriber=subscriber,
            actor=_actor(request),
            request=request,
            **{key: value for key, value in changes.items() if value is not None},
        )
    return webhook_out(_webhook(webhook_id))


@webhooks_router.post(
    "/{webhook_id}/rotate-secret",
    response={200: SecretOut, **ERRORS},
    summary="Replace a webhook's signing secret",
)
def rotate_webhook_secret(request: HttpRequest, webhook_id: int) -> Any:
    """The new secret is in this answer only; the old one stops signing at once (a message
    retried after this is signed with the new one)."""
    secret = webhook_services.rotate_subscriber_secret(
        subscriber=_webhook(webhook_id), actor=_actor(request), request=request
    )
    return {"secret": secret}


@webhooks_router.delete("/{webhook_id}", response={204: None, **ERRORS}, summary="Delete a webhook")
def delete_webhook(request: HttpRequest, webhook_id: int) -> Any:
    """It and its delivery log go (the audit log keeps both its creation and its deletion);
    `PATCH {"is_active": false}` stops it and keeps the log."""
    webhook_services.delete_subscriber(
        subscriber=_webhook(webhook_id), actor=_actor(request), request=request
    )
    return Status(HTTPStatus.NO_CONTENT, None)


# --- SCIM tokens


def scim_token_out(token: ScimToken) -> dict[str, Any]:
    now = timezone.now()
    state = "revoked" if token.revoked_at else ("active" if token.is_usable(now=now) else "expired")
    return {
        "id": token.pk,
        "name": token.name,
        "prefix": token.prefix,
        "read_only": token.read_only,
        "users": token.may_manage_users,
        "groups": token.may_manage_groups,
        "state": state,
        "created_at": token.created_at,
        "created_by": token.created_by.get_username() if token.created_by else None,
        "expires_at": token.expires_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def _scim_tokens() -> Any:
    return ScimToken.objects.select_related("created_by")


def _scim_token(token_id: int) -> ScimToken:
    token = _scim_tokens().filter(pk=token_id).first()
    if token is None:
        raise _not_found("SCIM token with id", token_id)
    return token


def _field_problem(field: str, message: str) -> Problem:
    return from_validation_error(ValidationError({field: [message]}))


@scim_tokens_router.get("/", response={200: ScimTokenPage, **ERRORS}, summary="List SCIM tokens")
def list_scim_tokens(
    request: HttpRequest,
    state: str | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    """Newest first, with reach, expiry, last use and revocation; never a token. `state`:
    `revoked` or `live` (neither revoked nor expired)."""
    tokens = _scim_tokens()
    if state == "revoked":
        tokens = tokens.filter(revoked_at__isnull=False)
    elif state == "live":
        tokens = tokens.filter(revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
    elif state is not None:
        raise _field_problem("state", "revoked or live")
    rows, next_cursor = _page(tokens, listing="scim-tokens", cursor_=cursor_, limit=limit)
    return {"items": [scim_token_out(row) for row in rows], "next_cursor": next_cursor}


@scim_tokens_router.post(
    "/", response={201: ScimTokenIssued, **ERRORS}, summary="Issue a SCIM token"
)
def issue_scim_token(request: HttpRequest, payload: ScimTokenCreate) -> Any:
    """The token is in this answer only. `read_only`, and `users`/`groups` (at least one),
    limit what the SCIM client may do. Needs `admin:users` too (`admin:users:read` for a
    read-only token): the token's holder acts on people and groups."""
    if payload.read_only:
        _require_one_of(request, "admin:users:read", "admin:users")
    else:
        _require_one_of(request, "admin:users")
    name = payload.name.strip()
    if not name:
        raise _field_problem("name", "This field is required.")
    if ScimToken.objects.filter(name=name).exists():
        raise _field_problem("name", f"A SCIM token named {name} already exists.")
    if not payload.users and not payload.groups:
        raise _field_problem("", "A SCIM token must cover users, groups or both.")
    try:
        token, plain = scim_services.issue_token(
            name=name,
            read_only=payload.read_only,
            users=payload.users,
            groups=payload.groups,
            expires_in_days=payload.expires_in_days,
            actor=_actor(request),
            request=request,
        )
    except IntegrityError:  # the same name issued meanwhile by another call
        raise _field_problem("name", f"A SCIM token named {name} already exists.") from None
    return Status(HTTPStatus.CREATED, {"scim_token": scim_token_out(token), "token": plain})


@scim_tokens_router.get(
    "/{token_id}", response={200: ScimTokenOut, **ERRORS}, summary="Read a SCIM token"
)
def read_scim_token(request: HttpRequest, token_id: int) -> Any:
    return scim_token_out(_scim_token(token_id))


@scim_tokens_router.post(
    "/{token_id}/revoke", response={200: ScimTokenOut, **ERRORS}, summary="Revoke a SCIM token"
)
def revoke_scim_token(request: HttpRequest, token_id: int) -> Any:
    """It stops working now. Revoking a revoked token changes nothing (and writes no row)."""
    token = _scim_token(token_id)
    scim_services.revoke_token(token=token, actor=_actor(request), request=request)
    return scim_token_out(_scim_token(token_id))


# --- Provisioning targets (one per app)


def target_out(target: ScimTarget) -> dict[str, Any]:
    return {
        "client_id": target.client.client_id,
        "base_url": target.base_url,
        "token_set": bool(target.token_encrypted),
        "enabled": target.enabled,
        "user_attributes": list(target.user_attributes or []),
        "enterprise_extension": target.enterprise_extension,
        "deprovision": target.deprovision,
        "created_at": target.created_at,
        "updated_at": target.updated_at,
        "last_sync_at": target.last_sync_at,
    }


def _client(client_id: str) -> Client:
    client = Client.objects.filter(client_id=client_id).first()
    if client is None:
        raise _not_found("client with id", client_id)
    return client


def _target(client_id: str) -> ScimTarget:
    target = ScimTarget.objects.select_related("client").filter(client__client_id=client_id).first()
    if target is None:
        _client(client_id)  # 404 naming the app when there is none
        raise Problem(
            HTTPStatus.NOT_FOUND,
            f"The app {client_id} has no provisioning target.",
            code="not-found",
        )
    return target


def _save(request: HttpRequest, target: ScimTarget, *, token: str | None) -> None:
    """provisioning.services.save_target (the admin's save: URL rules, audit row, a sync of an
    enabled target after commit); its field errors as a 400 problem naming each."""
    try:
        provisioning_services.save_target(
            target=target, token=token, actor=_actor(request), request=request
        )
    except ValidationError as exc:
        raise from_validation_error(exc) from exc


@targets_router.get(
    "/", response={200: ProvisioningTargetPage, **ERRORS}, summary="List provisioning targets"
)
def list_targets(
    request: HttpRequest,
    enabled: bool | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    targets = ScimTarget.objects.select_related("client")
    if enabled is not None:
        targets = targets.filter(enabled=enabled)
    rows, next_cursor = _page(targets, listing="provisioning-targets", cursor_=cursor_, limit=limit)
    return {"items": [target_out(row) for row in rows], "next_cursor": next_cursor}


@targets_router.get(
    "/{client_id}",
    response={200: ProvisioningTargetOut, **ERRORS},
    summary="Read an app's provisioning target",
)
def read_target(request: HttpRequest, client_id: str) -> Any:
    """`token_set` says whether the app's bearer token is stored; the token is never answered."""
    return target_out(_target(client_id))


@targets_router.put(
    "/{client_id}",
    response={200: ProvisioningTargetOut, 201: ProvisioningTargetOut, **ERRORS},
    summary="Create or replace an app's provisioning target",
)
def put_target(request: HttpRequest, client_id: str, payload: ProvisioningTargetIn) -> Any:
    """201 when made, 200 when replaced. `token` is write-only: required the first time, kept
    when left out. The base URL follows the back-channel rules (https, http only on loopback,
    no private address unless the app may call them). An enabled target is then synced in the
    background. Needs `admin:users:read` too: the app receives people's profiles."""
    _require_one_of(request, "admin:users:read", "admin:users")
    client = _client(client_id)
    if client.kind == Client.Kind.SERVICE:
        raise _field_problem("", "A machine-to-machine service signs nobody in: nothing to send.")
    target = ScimTarget.objects.filter(client=client).first() or ScimTarget(client=client)
    created = target.pk is None
    values = payload.model_dump()
    token = values.pop("token") or None
    for field, value in values.items():
        setattr(target, field, value)
    _save(request, target, token=token)
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return Status(status, target_out(_target(client_id)))


def _set_enabled(request: HttpRequest, client_id: str, *, enabled: bool) -> Any:
    target = _target(client_id)
    if target.enabled != enabled:
        target.enabled = enabled
        _save(request, target, token=None)
    return target_out(_target(client_id))


@targets_router.post(
    "/{client_id}/enable", response={200: ProvisioningTargetOut, **ERRORS}, summary="Enable"
)
def enable_target(request: HttpRequest, client_id: str) -> Any:
    """Provisioning resumes: the app is synced in the background."""
    return _set_enabled(request, client_id, enabled=True)


@targets_router.post(
    "/{client_id}/disable", response={200: ProvisioningTargetOut, **ERRORS}, summary="Disable"
)
def disable_target(request: HttpRequest, client_id: str) -> Any:
    """Paused: nothing is sent, nothing is lost (enabling syncs what changed meanwhile)."""
    return _set_enabled(request, client_id, enabled=False)


@targets_router.get(
    "/{client_id}/dry-run",
    response={200: DryRunOut, **ERRORS},
    summary="What a sync would send",
)
def dry_run(request: HttpRequest, client_id: str) -> Any:
    """The plan a sync would queue (create, update, deactivate, delete per person, with the
    SCIM resource), sending nothing: the admin's dry run and `manage.py provision sync
    --dry-run`."""
    target = _target(client_id)
    changes = plan_target(target=target)
    return {
        "live": target_is_live(target),
        "changes": [
            {
                "user_id": change.user.pk,
                "username": change.user.get_username(),
                "action": str(change.action),
                "remote_id": change.provisioned.remote_id if change.provisioned else None,
                "resource": change.resource,
            }
            for change in changes
        ],
    }


@targets_router.post("/{client_id}/sync", response={200: SyncOut, **ERRORS}, summary="Sync now")
def sync_now(request: HttpRequest, client_id: str) -> Any:
    """Queue what the dry run shows for the background worker (the admin's "sync now"); each
    delivery writes its own audit row when sent. 409 while the target or the app is disabled."""
    target = _target(client_id)
    if not target_is_live(target):
        raise Problem(
            HTTPStatus.CONFLICT,
            f"The provisioning target of {client_id} or the app itself is disabled.",
            code="target-disabled",
            title="Provisioning is paused",
        )
    queued = provisioning_services.sync_target(target=target, reason="sync_now")
    return {"queued": len(queued)}
