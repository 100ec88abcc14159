"""Every error of the admin API is RFC 9457 problem details, whatever answers it."""

from __future__ import annotations

from http import HTTPStatus

import pytest

from accounts.models import User
from tests.adminapi.conftest import assert_problem

pytestmark = pytest.mark.django_db


@pytest.mark.spec("RFC 9457", "3")
def test_an_unknown_path_under_the_api_is_a_404_problem(api, client):
    assert api.get("/users/").status_code == HTTPStatus.OK
    assert_problem(api.get("/no-such-thing/"), HTTPStatus.NOT_FOUND, "not-found")
    # Without a token too: the path is no secret, and never the site's HTML page.
    assert_problem(client.get("/api/v1/users/x/y/z"), HTTPStatus.NOT_FOUND)


def test_an_unknown_object_is_a_404_problem(api):
    assert api.get("/users/").status_code == HTTPStatus.OK
    body = assert_problem(api.get("/users/999999"), HTTPStatus.NOT_FOUND, "not-found")
    assert "999999" in body["detail"]
    assert_problem(api.get("/clients/nope"), HTTPStatus.NOT_FOUND, "not-found")
    assert_problem(api.get("/groups/424242"), HTTPStatus.NOT_FOUND, "not-found")


@pytest.mark.spec("RFC 9110", "15.5.6")
def test_a_method_the_path_does_not_serve_is_a_405_problem_with_allow(api):
    assert api.get("/users/").status_code == HTTPStatus.OK
    response = api.call("PUT", "/users/", {})
    assert_problem(response, HTTPStatus.METHOD_NOT_ALLOWED)
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


@pytest.mark.spec("RFC 9110", "15.5.16")
def test_a_body_that_is_not_json_is_a_415_problem(api):
    assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    response = api.http.post(
        "/api/v1/groups/",
        "name=Ops",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert_problem(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")


@pytest.mark.spec("RFC 9110", "15.5.14")
def test_a_5_mb_body_is_a_413_problem_before_it_is_read(api):
    assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    huge = {"name": "x" * (5 * 1024 * 1024)}
    assert_problem(api.post("/groups/", huge), HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    # Nothing was parsed or created: the one group is still the only one.
    assert [group["name"] for group in api.get("/groups/").json()["items"]] == ["Sales"]


def test_malformed_json_is_a_400_problem(api):
    assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    response = api.http.post(
        "/api/v1/groups/",
        '{"name": ',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    assert_problem(response, HTTPStatus.BAD_REQUEST, "invalid-request")


def test_unknown_fields_are_a_400_problem_naming_each(api):
    assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    body = assert_problem(
        api.post("/users/", {"username": "bob", "email": "b@example.com", "is_admin": True}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    assert {"field": "is_admin", "message": "unknown field"} in body["errors"]
    assert not User.objects.filter(username="bob").exists()
    body = assert_problem(
        api.patch(f"/groups/{api.get('/groups/').json()['items'][0]['id']}", {"colour": "red"}),
        HTTPStatus.BAD_REQUEST,
    )
    assert body["errors"][0]["field"] == "colour"


def test_a_wrong_type_is_a_field_problem(api):
    assert api.post("/groups/", {"name": "Sales"}).status_code == HTTPStatus.CREATED
    body = assert_problem(
        api.post("/users/", {"username": ["bob"]}), HTTPStatus.BAD_REQUEST, "invalid-request"
    )
    assert body["errors"][0]["field"] == "username"
    body = assert_problem(api.get("/users/?limit=many"), HTTPStatus.BAD_REQUEST)
    assert body["errors"][0]["field"] == "limit"
    assert_problem(api.get("/users/?limit=0"), HTTPStatus.BAD_REQUEST)
    assert_problem(api.get("/users/?limit=1000"), HTTPStatus.BAD_REQUEST)


def test_a_nul_character_anywhere_is_a_400_problem_and_changes_nothing(api):
    """PostgreSQL cannot store U+0000 (idp/input_limits.py): in a body, a query or a path it is
    refused before a lookup or a write could fail with a 500. The PostgreSQL phase of
    `make test` holds the difference; on SQLite the answers are the same."""
    created = api.post("/groups/", {"name": "Sales"})
    assert created.status_code == HTTPStatus.CREATED
    assert api.get("/users/?q=sales").status_code == HTTPStatus.OK
    body = assert_problem(
        api.post("/groups/", {"name": "Ops", "parent": "Sa\x00les"}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    assert body["errors"] == [
        {"field": "parent", "message": "Value error, may not contain NUL characters"}
    ]
    body = assert_problem(
        api.post("/users/", {"username": "bob", "email": "b@example.com", "first_name": "B\x00"}),
        HTTPStatus.BAD_REQUEST,
    )
    assert body["errors"][0]["field"] == "first_name"
    assert_problem(api.get("/users/?q=%00"), HTTPStatus.BAD_REQUEST, "invalid-request")
    assert_problem(api.get("/audit-events/?type=x%00"), HTTPStatus.BAD_REQUEST)
    assert_problem(api.get("/users/bob%00"), HTTPStatus.BAD_REQUEST, "invalid-request")
    assert not User.objects.filter(username="bob").exists()
    assert [group["name"] for group in api.get("/groups/").json()["items"]] == ["Sales"]


def test_a_value_longer_than_its_column_is_a_400_problem_not_a_database_error(api):
    """SQLite would store it; PostgreSQL refuses it (the PostgreSQL phase holds the 500 this
    was)."""
    created = api.post("/groups/", {"name": "Sales", "description": "x" * 500})
    assert created.status_code == HTTPStatus.CREATED
    body = assert_problem(
        api.post("/groups/", {"name": "Ops", "description": "x" * 501}),
        HTTPStatus.BAD_REQUEST,
        "invalid-request",
    )
    assert body["errors"][0]["field"] == "description"
    group_id = created.json()["id"]
    body = assert_problem(
        api.patch(f"/groups/{group_id}", {"description": "y" * 501}), HTTPStatus.BAD_REQUEST
    )
    assert body["errors"][0]["field"] == "description"
    assert api.get(f"/groups/{group_id}").json()["description"] == "x" * 500
    assert [group["name"] for group in api.get("/groups/").json()["items"]] == ["Sales"]


def test_a_malformed_rate_limit_stops_the_start_up_check(settings):
    from adminapi.checks import check_api_settings

    assert check_api_settings() == []
    settings.IDP_API_RATE_LIMIT = "lots"
    assert [error.id for error in check_api_settings()] == ["adminapi.E001"]
    settings.IDP_API_RATE_LIMIT = "600/m"
    settings.IDP_API_MAX_BODY_BYTES = 10
    assert [error.id for error in check_api_settings()] == ["adminapi.E002"]
