"""The audit log through the API: filters and signed-cursor pagination."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import AuditEvent
from tests.adminapi.conftest import assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(user, admin_user):
    """Seven rows a minute apart (and the service client's own registration before them)."""
    start = timezone.now() - timedelta(hours=1)
    rows = []
    for minute, (type, actor, subject) in enumerate(
        [
            (AuditEvent.Type.LOGIN_SUCCEEDED, user, user),
            (AuditEvent.Type.LOGIN_FAILED, None, user),
            (AuditEvent.Type.LOGIN_SUCCEEDED, admin_user, admin_user),
            (AuditEvent.Type.USER_CHANGED, admin_user, user),
            (AuditEvent.Type.LOGIN_FAILED, None, admin_user),
            (AuditEvent.Type.LOGOUT, user, user),
            (AuditEvent.Type.PASSWORD_CHANGED, user, user),
        ]
    ):
        event = record_event(type=type, actor=actor, subject=subject)
        AuditEvent.objects.filter(pk=event.pk).update(created_at=start + timedelta(minutes=minute))
        rows.append(AuditEvent.objects.get(pk=event.pk))
    return rows


def _ids(api, **query) -> list[int]:
    response = api.get(f"/audit-events/?{urlencode(query, doseq=True)}")
    assert response.status_code == HTTPStatus.OK, response.content
    return [item["id"] for item in response.json()["items"]]


def test_events_read_newest_first_with_every_filter(api, log):
    registered = AuditEvent.objects.get(type=AuditEvent.Type.CLIENT_CREATED)
    # The service client's registration happened now; the log rows an hour ago.
    assert _ids(api, limit=3) == [registered.pk, log[6].pk, log[5].pk]
    assert _ids(api, client=api.client.client_id) == [registered.pk]
    by_type = _ids(api, type=["login.failed", "logout"])
    assert by_type == [log[5].pk, log[4].pk, log[1].pk]
    assert _ids(api, actor="root") == [log[3].pk, log[2].pk]
    assert _ids(api, subject="root") == [log[4].pk, log[2].pk]
    window = {"since": log[2].created_at.isoformat(), "until": log[4].created_at.isoformat()}
    assert _ids(api, **window) == [log[3].pk, log[2].pk]
    assert_problem(
        api.get(f"/audit-events/?{urlencode({**window, 'since': window['until']})}"),
        HTTPStatus.BAD_REQUEST,
    )
    item = api.get("/audit-events/?type=user.changed").json()["items"][0]
    assert item == {**item, "actor": "root", "subject": "alice", "type": "user.changed"}


def test_the_cursor_walks_every_row_once(api, log):
    seen, cursor = [], None
    while True:
        query = {"limit": 2, "subject": "alice", **({"cursor": cursor} if cursor else {})}
        body = api.get(f"/audit-events/?{urlencode(query)}").json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [log[i].pk for i in (6, 5, 3, 1, 0)]


def test_rows_with_the_same_time_are_paged_by_id(api, log):
    AuditEvent.objects.filter(pk__in=[row.pk for row in log]).update(created_at=log[0].created_at)
    first = api.get("/audit-events/?subject=alice&limit=3").json()
    rest = api.get(f"/audit-events/?subject=alice&limit=3&cursor={first['next_cursor']}").json()
    ids = [item["id"] for item in first["items"] + rest["items"]]
    assert ids == sorted((log[i].pk for i in (0, 1, 3, 5, 6)), reverse=True)


def test_a_page_of_events_costs_a_fixed_number_of_queries(api, log, django_assert_max_num_queries):
    cursor = api.get("/audit-events/?limit=3").json()["next_cursor"]
    # The token with its client (one statement), then the page.
    with django_assert_max_num_queries(2):
        response = api.get(f"/audit-events/?limit=3&cursor={cursor}")
    assert len(response.json()["items"]) == 3


def test_a_tampered_cursor_is_a_400_problem(api, log):
    cursor = api.get("/audit-events/?limit=2").json()["next_cursor"]
    assert api.get(f"/audit-events/?limit=2&cursor={cursor}").status_code == HTTPStatus.OK
    # Change the signed payload, keep the signature: refused.
    payload, _sep, signature = cursor.rpartition(":")
    forged = payload[:-1] + ("A" if payload[-1] != "A" else "B") + ":" + signature
    assert_problem(
        api.get(f"/audit-events/?cursor={forged}"), HTTPStatus.BAD_REQUEST, "invalid-cursor"
    )


def test_the_service_clients_own_actions_are_found_by_its_name(api, user):
    assert api.post(f"/users/{user.pk}/end-sessions").status_code == HTTPStatus.OK
    items = api.get(f"/audit-events/?actor={api.actor}").json()["items"]
    assert [item["type"] for item in items] == ["sessions.ended"]
    assert items[0]["extra"]["actor_client_id"] == api.client.client_id


def test_the_audit_scope_is_needed_and_the_read_variant_suffices(api_with):
    reader = api_with("admin:audit:read")
    assert reader.get("/audit-events/").status_code == HTTPStatus.OK
    assert_problem(api_with("admin:users").get("/audit-events/"), HTTPStatus.FORBIDDEN)
