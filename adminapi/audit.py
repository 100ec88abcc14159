"""/api/v1/audit-events/: the audit log, read-only, newest first, by signed cursor."""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest
from django.utils.dateparse import parse_datetime
from ninja import Query, Router

from accounts.models import AuditEvent
from adminapi import cursor
from adminapi.auth import ServiceClientAuth
from adminapi.problems import Problem
from adminapi.schemas import AuditPage, ProblemOut

router = Router(auth=ServiceClientAuth("audit"), tags=["audit"])

ERRORS: dict[int, Any] = dict.fromkeys((400, 401, 403, 404, 405, 429), ProblemOut)


def event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "type": event.type,
        "actor": event.actor_repr,
        "subject": event.subject_repr,
        "client": event.client_repr,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "extra": event.extra,
    }


def _key(raw: list[Any]) -> list[Any]:
    when = parse_datetime(raw[0]) if isinstance(raw[0], str) else None
    if when is None:
        raise ValueError("not a time")
    return [when, int(raw[1])]


@router.get("/", response={200: AuditPage, **ERRORS}, summary="Read the audit log")
def list_events(
    request: HttpRequest,
    type: list[str] = Query([]),  # noqa: B008 - ninja declares a repeated query parameter so
    actor: str | None = None,
    subject: str | None = None,
    client: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor_: str | None = Query(None, alias="cursor"),
    limit: int = cursor.DEFAULT_LIMIT,
) -> Any:
    """Newest first. `type` repeats (`type=client.created&type=user.created`); `actor` is a
    username or `service:<client_id>` for a service client; `subject` a username; `client` a
    client id; `since` (inclusive) and `until` (exclusive) are ISO 8601 times. Follow
    `next_cursor` (with the same filters) until it is null."""
    events = AuditEvent.objects.all()
    if type:
        events = events.filter(type__in=type)
    if actor:
        events = events.filter(actor_repr=actor)
    if subject:
        events = events.filter(subject_repr=subject)
    if client:
        events = events.filter(client_repr=client)
    if since is not None:
        events = events.filter(created_at__gte=since)
    if until is not None:
        events = events.filter(created_at__lt=until)
    if since is not None and until is not None and since >= until:
        raise Problem(
            HTTPStatus.BAD_REQUEST,
            "since must be before until.",
            code="invalid-request",
            errors=[{"field": "until", "message": "must be after since"}],
        )
    rows, next_cursor = cursor.page(
        events,
        listing="audit-events",
        fields=("created_at", "id"),
        cursor=cursor_,
        limit=limit,
        key_of=lambda event: [event.created_at.isoformat(), event.pk],
        parse_key=_key,
    )
    return {"items": [event_out(event) for event in rows], "next_cursor": next_cursor}
