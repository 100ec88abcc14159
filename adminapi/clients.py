"""/api/v1/clients/: the client registry through oauth_clients.services (the same functions as
the admin and `manage.py clients`: each validates and writes the audit row, the service client
as actor).

No escalation through the registry: a service client may give an app (or an import may give
one) only admin scopes that its own token carries, so `admin:clients` alone can never mint a
client with `admin:superusers`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Status

from accounts.models import User
from adminapi import cursor
from adminapi.auth import ServiceClientAuth, require_scope
from adminapi.problems import Problem
from adminapi.schemas import (
    AssignmentIn,
    AssignmentOut,
    ClientCreate,
    ClientCreated,
    ClientOut,
    ClientPage,
    ClientUpdate,
    ImportIn,
    ImportOut,
    ProblemOut,
    RegistryOut,
    RotatedOut,
    RotateIn,
    SamlClientCreate,
)
from oauth_clients import selectors, services
from oauth_clients.models import Client
from oauth_clients.uri_rules import ADMIN_SCOPES

router = Router(auth=ServiceClientAuth("clients"), tags=["clients"])

ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 403, 404, 405, 409, 413, 415, 429), ProblemOut)
# The API's names for the registry's fields where they differ (as in the export).
FIELD_FOR_KEY = {"scopes": "allowed_scopes", "id_token_algorithm": "algorithm"}


def _actor(request: HttpRequest) -> Any:
    return request.auth  # type: ignore[attr-defined]


def _clients() -> QuerySet[Client]:
    return Client.objects.select_related("saml_sp").prefetch_related(
        "assignments__group",
        "assignments__user",
        "roles__grants__group",
        "roles__grants__user",
        "claim_groups",
    )


def _client(client_id: str) -> Client:
    client = _clients().filter(client_id=client_id).first()
    if client is None:
        raise Problem(HTTPStatus.NOT_FOUND, f"No client with id {client_id}.", code="not-found")
    return client


def _out(client_id: str) -> dict[str, Any]:
    return selectors.registry_entry(_client(client_id))


def _check_admin_scopes(request: HttpRequest, scopes: Any) -> None:
    """403 when the app would get an admin scope the caller's own token does not carry."""
    for scope in sorted(set(scopes or ()) & ADMIN_SCOPES):
        require_scope(_actor(request), scope)


@router.get(
    "/", response={200: ClientPage, **ERRORS}, exclude_unset=True, summary="List client apps"
)
def list_clients(
    request: HttpRequest,
    kind: str | None = None,
    is_active: bool | None = None,
    q: str | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    clients = _clients()
    if kind:
        clients = clients.filter(kind=kind)
    if is_active is not None:
        clients = clients.filter(is_active=is_active)
    if q:
        clients = clients.filter(name__icontains=q)
    rows, next_cursor = cursor.page(
        clients,
        listing="clients",
        fields=("pk",),
        cursor=cursor_,
        limit=limit,
        key_of=lambda client: [client.pk],
        parse_key=lambda key: [int(key[0])],
    )
    return {"items": [selectors.registry_entry(c) for c in rows], "next_cursor": next_cursor}


@router.post(
    "/", response={201: ClientCreated, **ERRORS}, exclude_unset=True, summary="Register an app"
)
def create_client(request: HttpRequest, payload: ClientCreate) -> Any:
    """By kind: `web`, `spa`, `native`, `service`, `device` or `api` (a SAML app:
    `POST /clients/saml`). The secret is in this answer only ("" for a public client or one
    that authenticates with its keys)."""
    values = payload.model_dump()
    _check_admin_scopes(request, values["scopes"])
    values["algorithm"] = values.pop("id_token_algorithm")
    client, secret = services.register_client(actor=_actor(request), request=request, **values)
    return Status(HTTPStatus.CREATED, {"client": _out(client.client_id), "client_secret": secret})


@router.post(
    "/saml",
    response={201: ClientCreated, **ERRORS},
    exclude_unset=True,
    summary="Register a SAML app",
)
def create_saml_client(request: HttpRequest, payload: SamlClientCreate) -> Any:
    """From its metadata (`metadata_xml`, or `metadata_url`, fetched through the SSRF-safe
    sender) or by hand (`entity_id`, `acs_urls`, `certificates`), as the admin and `manage.py
    clients create --kind saml` register one. A SAML app has no secret."""
    values = payload.model_dump()
    client = services.register_saml_app(actor=_actor(request), request=request, **values)
    return Status(HTTPStatus.CREATED, {"client": _out(client.client_id), "client_secret": ""})


@router.get(
    "/export",
    response={200: RegistryOut, **ERRORS},
    exclude_unset=True,
    summary="Export the registry",
)
def export_registry(request: HttpRequest) -> Any:
    """Registry as code, as `manage.py clients export` writes it: never a secret."""
    return {"version": services.REGISTRY_VERSION, "clients": selectors.registry()}


@router.post(
    "/import",
    response={200: ImportOut, **ERRORS},
    exclude_unset=True,
    summary="Import the registry",
)
def import_registry(request: HttpRequest, payload: ImportIn) -> Any:
    """Make the registry match an export: all or nothing (400 with every problem), weakening
    changes refused unless `force`; `dry_run` checks without keeping anything."""
    entries = payload.document.get("clients")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("scopes"), list):
            _check_admin_scopes(request, entry["scopes"])
    try:
        report = services.import_registry(
            document=payload.document,
            actor=_actor(request),
            force=payload.force,
            dry_run=payload.dry_run,
        )
    except services.RegistryImportError as exc:
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            "The import was refused as a whole; nothing changed.",
            code="import-refused",
            title="The registry import was refused",
            errors=[{"field": "document", "message": problem} for problem in exc.problems],
        ) from exc
    return {
        "dry_run": report.dry_run,
        "created": [{"client_id": cid, "client_secret": secret} for cid, secret in report.created],
        "updated": [{"client_id": cid, "fields": fields} for cid, fields in report.updated],
        "enabled": report.enabled,
        "disabled": report.disabled,
        "unchanged": report.unchanged,
        "forced": [{"client_id": cid, "reasons": reasons} for cid, reasons in report.forced],
    }


@router.get(
    "/{client_id}", response={200: ClientOut, **ERRORS}, exclude_unset=True, summary="Read an app"
)
def read_client(request: HttpRequest, client_id: str) -> Any:
    return _out(client_id)


@router.patch(
    "/{client_id}", response={200: ClientOut, **ERRORS}, exclude_unset=True, summary="Change an app"
)
def update_client(request: HttpRequest, client_id: str, payload: ClientUpdate) -> Any:
    """Only the fields sent change; the kind is fixed at registration. `access_policy`
    (`open` or `assigned`) says who may use the app."""
    client = _client(client_id)
    changes = payload.model_dump(exclude_unset=True)
    policy = changes.pop("access_policy", None)
    if "scopes" in changes:
        _check_admin_scopes(request, changes["scopes"])
    fields = {FIELD_FOR_KEY.get(key, key): value for key, value in changes.items()}
    if fields:
        services.update_client(
            client=client, actor=_actor(request), changes=fields, request=request
        )
    if policy is not None:
        services.set_access_policy(
            client=client, policy=policy, actor=_actor(request), request=request
        )
    return _out(client_id)


@router.post(
    "/{client_id}/rotate-secret",
    response={200: RotatedOut, **ERRORS},
    exclude_unset=True,
    summary="Rotate an app's secret",
)
def rotate_secret(request: HttpRequest, client_id: str, payload: RotateIn) -> Any:
    """A new secret, in this answer only. The old one keeps working for `grace_seconds`."""
    client = _client(client_id)
    secret = services.rotate_client_secret(
        client=client, actor=_actor(request), grace_seconds=payload.grace_seconds, request=request
    )
    return {"client_secret": secret, "previous_valid_until": client.previous_secret_expires_at}


@router.post(
    "/{client_id}/disable",
    response={200: ClientOut, **ERRORS},
    exclude_unset=True,
    summary="Disable",
)
def disable_client(request: HttpRequest, client_id: str) -> Any:
    """No new sign-ins or tokens; every token already issued stops working."""
    services.disable_client(client=_client(client_id), actor=_actor(request), request=request)
    return _out(client_id)


@router.post(
    "/{client_id}/enable", response={200: ClientOut, **ERRORS}, exclude_unset=True, summary="Enable"
)
def enable_client(request: HttpRequest, client_id: str) -> Any:
    services.enable_client(client=_client(client_id), actor=_actor(request), request=request)
    return _out(client_id)


def _assignee(payload: AssignmentIn) -> dict[str, Any]:
    if (payload.group is None) == (payload.username is None):
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            "Name exactly one of group or username.",
            code="invalid-request",
            errors=[{"field": "", "message": "exactly one of group, username"}],
        )
    if payload.group is not None:
        group = Group.objects.filter(name=payload.group).first()
        if group is None:
            raise Problem(
                HTTPStatus.BAD_REQUEST,
                f"No group named {payload.group}.",
                code="invalid-request",
                errors=[{"field": "group", "message": "unknown group"}],
            )
        return {"group": group}
    user = User.objects.filter(username=payload.username).first()
    if user is None:
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            f"No user named {payload.username}.",
            code="invalid-request",
            errors=[{"field": "username", "message": "unknown user"}],
        )
    return {"user": user}


def _assignments(client_id: str) -> dict[str, Any]:
    entry = _out(client_id)
    return {key: entry[key] for key in ("access_policy", "assigned_groups", "assigned_users")}


@router.post(
    "/{client_id}/assignments",
    response={200: AssignmentOut, **ERRORS},
    exclude_unset=True,
    summary="Let a group or a user use the app",
)
def assign(request: HttpRequest, client_id: str, payload: AssignmentIn) -> Any:
    """Takes effect while the app's `access_policy` is `assigned`. Assigning twice changes
    nothing."""
    services.assign(
        client=_client(client_id), actor=_actor(request), request=request, **_assignee(payload)
    )
    return _assignments(client_id)


@router.post(
    "/{client_id}/assignments/remove",
    response={200: AssignmentOut, **ERRORS},
    exclude_unset=True,
    summary="Take an assignment away",
)
def unassign(request: HttpRequest, client_id: str, payload: AssignmentIn) -> Any:
    """Those who lose access by it lose the app's tokens, and the app is told (back-channel
    logout)."""
    services.unassign(
        client=_client(client_id), actor=_actor(request), request=request, **_assignee(payload)
    )
    return _assignments(client_id)
