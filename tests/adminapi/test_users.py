"""People and groups through the API: the same services, the same rule, every change audited
with the service client as actor."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group

from accounts import services
from accounts.models import AuditEvent, User
from tests.adminapi.conftest import assert_problem

pytestmark = pytest.mark.django_db

PASSWORD = "a long and unguessable passphrase 42"


def _events(api, type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(type=type, actor_repr=api.actor))


def test_creating_a_user_is_audited_with_the_service_client_as_actor(api):
    response = api.post(
        "/users/",
        {"username": "bob", "email": "bob@example.com", "first_name": "Bob", "password": PASSWORD},
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    body = response.json()
    assert body["username"] == "bob"
    assert body["is_active"]
    assert not body["is_staff"]
    bob = User.objects.get(username="bob")
    assert bob.check_password(PASSWORD)
    [event] = _events(api, AuditEvent.Type.USER_CREATED)
    assert event.subject == bob
    assert event.actor is None
    assert event.extra["actor_client_id"] == api.client.client_id
    assert api.get(f"/users/{bob.pk}").json()["email"] == "bob@example.com"


def test_a_user_without_a_password_is_emailed_a_link(
    api, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/users/", {"username": "carol", "email": "carol@example.com"})
    assert response.status_code == HTTPStatus.CREATED, response.content
    assert not User.objects.get(username="carol").has_usable_password()
    body = assert_problem(api.post("/users/", {"username": "dan"}), HTTPStatus.BAD_REQUEST)
    assert body["errors"][0]["field"] == "email"
    assert [message.to for message in mailoutbox] == [["carol@example.com"]]


def test_a_taken_username_in_any_letter_case_or_a_weak_password_is_a_field_problem(api, user):
    assert api.post("/users/", {"username": "bob", "password": PASSWORD}).status_code == 201
    body = assert_problem(
        api.post("/users/", {"username": "ALICE", "password": PASSWORD}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"][0]["field"] == "username"
    body = assert_problem(
        api.post("/users/", {"username": "dave", "password": "123"}), HTTPStatus.BAD_REQUEST
    )
    assert {error["field"] for error in body["errors"]} == {"password"}
    assert not User.objects.filter(username__in=["ALICE", "dave"]).exists()


def test_listing_filters_and_pages_by_signed_cursor(api, user):
    for name in ("bob", "carol", "dave"):
        User.objects.create_user(name, f"{name}@example.com", None, is_active=name != "dave")
    first = api.get("/users/?limit=2").json()
    assert [item["username"] for item in first["items"]] == ["dave", "carol"]
    second = api.get(f"/users/?limit=2&cursor={first['next_cursor']}").json()
    assert [item["username"] for item in second["items"]] == ["bob", "alice"]
    assert second["next_cursor"] is None
    active = api.get("/users/?is_active=false").json()["items"]
    assert [item["username"] for item in active] == ["dave"]
    assert api.get("/users/?q=CAR").json()["items"][0]["username"] == "carol"
    assert api.get("/users/?username=Alice").json()["items"][0]["id"] == user.pk


def test_a_page_of_users_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    for number in range(30):
        user = User.objects.create_user(f"user{number}", f"u{number}@example.com", None)
        services.add_members(
            group=Group.objects.get_or_create(name=f"team{number % 3}")[0], users=[user], actor=None
        )
    # The token with its client (one statement), the page, its groups (one prefetch).
    with django_assert_max_num_queries(3):
        response = api.get("/users/?limit=25")
    assert response.status_code == HTTPStatus.OK
    assert len(response.json()["items"]) == 25


def test_a_tampered_cursor_is_a_400_problem(api, user):
    User.objects.create_user("bob", "bob@example.com", None)
    cursor = api.get("/users/?limit=1").json()["next_cursor"]
    assert api.get(f"/users/?limit=1&cursor={cursor}").status_code == HTTPStatus.OK
    head, _sep, tail = cursor.rpartition(":")
    tampered = f"{head}:{'A' if tail[0] != 'A' else 'B'}{tail[1:]}"
    body = assert_problem(
        api.get(f"/users/?limit=1&cursor={tampered}"), HTTPStatus.BAD_REQUEST, "invalid-cursor"
    )
    assert body["errors"] == [{"field": "cursor", "message": "invalid cursor"}]
    assert_problem(api.get("/users/?cursor=garbage"), HTTPStatus.BAD_REQUEST, "invalid-cursor")
    # A genuine cursor of another listing is not a position in this one.
    services.create_group(name="A", actor=None)
    services.create_group(name="B", actor=None)
    groups_cursor = api.get("/groups/?limit=1").json()["next_cursor"]
    assert_problem(api.get(f"/users/?cursor={groups_cursor}"), HTTPStatus.BAD_REQUEST)


def test_changing_a_user_audits_each_change(api, user):
    response = api.patch(f"/users/{user.pk}", {"first_name": "Alicia", "department": "Ops"})
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["first_name"] == "Alicia"
    [event] = _events(api, AuditEvent.Type.USER_CHANGED)
    assert event.extra["fields"] == ["department", "first_name"]
    assert api.patch(f"/users/{user.pk}", {"email": "not an address"}).status_code == 400


def test_deactivating_ends_sessions_and_tokens_and_activating_restores(api, user):
    response = api.post(f"/users/{user.pk}/deactivate")
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["is_active"] is False
    assert len(_events(api, AuditEvent.Type.USER_DEACTIVATED)) == 1
    assert api.post(f"/users/{user.pk}/activate").json()["is_active"] is True
    assert len(_events(api, AuditEvent.Type.USER_ACTIVATED)) == 1
    # PATCH says the same through the same service.
    assert api.patch(f"/users/{user.pk}", {"is_active": False}).json()["is_active"] is False
    assert len(_events(api, AuditEvent.Type.USER_DEACTIVATED)) == 2


def test_reset_factors_end_sessions_and_revoke_tokens_are_audited(api, user):
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={})
    assert api.post(f"/users/{user.pk}/reset-factors").json() == {"count": 1}
    assert not Authenticator.objects.filter(user=user).exists()
    assert api.post(f"/users/{user.pk}/end-sessions").json() == {"count": 0}
    revoked = api.post(f"/users/{user.pk}/revoke-tokens").json()["revoked"]
    assert revoked == {"access_tokens_deleted": 0, "refresh_tokens_revoked": 0, "codes_deleted": 0}
    assert len(_events(api, AuditEvent.Type.MFA_CHANGED)) == 1
    assert len(_events(api, AuditEvent.Type.SESSIONS_ENDED)) == 1
    assert len(_events(api, AuditEvent.Type.TOKEN_REVOKED)) == 1


def test_admin_users_acts_only_below_staff_level(api, user):
    staff = User.objects.create_user("helpdesk", "h@example.com", None, is_staff=True)
    assert api.post(f"/users/{user.pk}/reset-factors").status_code == HTTPStatus.OK
    assert_problem(api.post(f"/users/{staff.pk}/deactivate"), HTTPStatus.FORBIDDEN, "forbidden")
    assert User.objects.get(pk=staff.pk).is_active
    # The attempt is on the staff member's history, as the service client's.
    [refused] = _events(api, AuditEvent.Type.ADMIN_REFUSED)
    assert refused.subject == staff
    assert refused.extra["action"] == "deactivate"


def test_making_or_removing_a_superuser_needs_admin_superusers(api, superuser_api, user):
    assert api.patch(f"/users/{user.pk}", {"job_title": "Engineer"}).status_code == 200
    assert_problem(
        api.post("/users/", {"username": "eve", "password": PASSWORD, "is_superuser": True}),
        HTTPStatus.FORBIDDEN,
        "forbidden",
    )
    assert_problem(api.patch(f"/users/{user.pk}", {"is_superuser": True}), HTTPStatus.FORBIDDEN)
    assert_problem(api.patch(f"/users/{user.pk}", {"is_staff": True}), HTTPStatus.FORBIDDEN)
    assert not User.objects.filter(is_superuser=True).exists()
    assert not User.objects.filter(username="eve").exists()
    # With the scope: granted, and audited as the service client's act.
    response = superuser_api.patch(f"/users/{user.pk}", {"is_superuser": True})
    assert response.status_code == HTTPStatus.OK, response.content
    assert response.json()["is_superuser"]
    assert response.json()["is_staff"]
    assert len(_events(superuser_api, AuditEvent.Type.SUPERUSER_GRANTED)) == 1
    created = superuser_api.post(
        "/users/", {"username": "eve", "password": PASSWORD, "is_superuser": True}
    )
    assert created.status_code == HTTPStatus.CREATED, created.content
    # Removing one without the scope is refused too (acting on a superuser at all is).
    eve = created.json()["id"]
    assert_problem(api.patch(f"/users/{eve}", {"is_superuser": False}), HTTPStatus.FORBIDDEN)
    assert superuser_api.patch(f"/users/{eve}", {"is_superuser": False}).status_code == 200
    assert len(_events(superuser_api, AuditEvent.Type.SUPERUSER_REVOKED)) == 1


def test_the_last_active_superuser_cannot_be_removed(superuser_api, admin_user):
    path = f"/users/{admin_user.pk}"
    assert superuser_api.patch(path, {"job_title": "Founder"}).status_code == HTTPStatus.OK
    for attempt in (
        lambda: superuser_api.patch(path, {"is_superuser": False}),
        lambda: superuser_api.patch(path, {"is_active": False}),
        lambda: superuser_api.post(f"{path}/deactivate"),
    ):
        body = assert_problem(attempt(), HTTPStatus.CONFLICT, "last-superuser")
        assert "root" in body["detail"]
    admin_user.refresh_from_db()
    assert admin_user.is_superuser
    assert admin_user.is_active
    # With a second active superuser, the first may go.
    User.objects.create_superuser("backup", "backup@example.com", None)
    assert superuser_api.post(f"{path}/deactivate").status_code == HTTPStatus.OK
    assert_problem(
        superuser_api.post(f"/users/{User.objects.get(username='backup').pk}/deactivate"),
        HTTPStatus.CONFLICT,
    )


# --- Groups


def test_groups_are_created_nested_renamed_and_their_members_changed(api, user):
    sales = api.post("/groups/", {"name": "Sales", "description": "Everyone in sales"})
    assert sales.status_code == HTTPStatus.CREATED, sales.content
    emea = api.post("/groups/", {"name": "Sales EMEA", "parent": "Sales"}).json()
    assert emea["parent"] == "Sales"
    added = api.post(f"/groups/{emea['id']}/members", {"usernames": ["alice"]})
    assert added.json() == {"usernames": ["alice"]}
    assert api.post(f"/groups/{emea['id']}/members", {"usernames": ["alice"]}).json() == {
        "usernames": []
    }
    assert api.get(f"/groups/{emea['id']}/members").json() == {"usernames": ["alice"]}
    renamed = api.patch(f"/groups/{emea['id']}", {"name": "EMEA sales", "parent": None}).json()
    assert renamed == {**renamed, "name": "EMEA sales", "parent": None, "member_count": 1}
    assert api.delete(f"/groups/{emea['id']}/members/alice").status_code == 204
    assert_problem(api.delete(f"/groups/{emea['id']}/members/alice"), HTTPStatus.NOT_FOUND)
    types = {event.type for event in AuditEvent.objects.filter(actor_repr=api.actor)}
    assert types >= {
        AuditEvent.Type.GROUP_CREATED,
        AuditEvent.Type.GROUP_MEMBER_ADDED,
        AuditEvent.Type.GROUP_CHANGED,
        AuditEvent.Type.GROUP_PARENT_CHANGED,
        AuditEvent.Type.GROUP_MEMBER_REMOVED,
    }
    assert api.delete(f"/groups/{emea['id']}").status_code == HTTPStatus.NO_CONTENT
    assert not Group.objects.filter(name="EMEA sales").exists()


def test_group_refusals_are_field_problems(api, user):
    top = api.post("/groups/", {"name": "Sales"}).json()
    child = api.post("/groups/", {"name": "EMEA", "parent": "Sales"}).json()
    assert_problem(api.post("/groups/", {"name": "sales"}), HTTPStatus.BAD_REQUEST)
    body = assert_problem(
        api.patch(f"/groups/{top['id']}", {"parent": "EMEA"}), HTTPStatus.BAD_REQUEST
    )
    assert "subgroups" in body["detail"]
    assert child["parent"] == "Sales"
    body = assert_problem(
        api.post(f"/groups/{top['id']}/members", {"usernames": ["nobody"]}),
        HTTPStatus.BAD_REQUEST,
    )
    assert body["errors"][0]["field"] == "usernames"
    assert_problem(api.post(f"/groups/{top['id']}/members", {"usernames": []}), 400)
