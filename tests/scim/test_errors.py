"""Bad input at the SCIM endpoint, each answered with a SCIM error body (RFC 7644 §3.12:
the Error schema, `status` as a string, `scimType`) and never a change."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from accounts.models import User
from scim.models import ScimToken
from scim.services import issue_token, revoke_token
from tests.scim.conftest import GROUP_SCHEMA, SCIM, ScimClient, assert_scim_error, new_user

pytestmark = pytest.mark.django_db


@pytest.mark.spec("RFC 7644", "2")
def test_a_missing_wrong_expired_or_revoked_token_answers_401(client, scim):
    assert scim.get("Users").status_code == HTTPStatus.OK  # the positive path
    body = assert_scim_error(client.get("/scim/v2/Users"), HTTPStatus.UNAUTHORIZED)
    assert "token" in body["detail"]
    wrong = ScimClient(client, "scim_" + "A" * 43)
    response = wrong.get("Users")
    assert_scim_error(response, HTTPStatus.UNAUTHORIZED)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert_scim_error(ScimClient(client, "x" * 5000).get("Users"), HTTPStatus.UNAUTHORIZED)
    basic = client.get("/scim/v2/Users", headers={"Authorization": f"Basic {scim.token}"})
    assert_scim_error(basic, HTTPStatus.UNAUTHORIZED)
    expired, plain = issue_token(name="Old", expires_in_days=1)
    ScimToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    assert_scim_error(ScimClient(client, plain).get("Users"), HTTPStatus.UNAUTHORIZED)
    revoke_token(token=scim.token_row)
    assert_scim_error(scim.get("ServiceProviderConfig"), HTTPStatus.UNAUTHORIZED)


@pytest.mark.spec("RFC 7644", "3.12")
def test_a_read_only_token_reads_but_may_not_write(client, db):
    _token, plain = issue_token(name="Auditor", read_only=True)
    reader = ScimClient(client, plain)
    assert reader.get("Users").status_code == HTTPStatus.OK
    assert_scim_error(reader.post("Users", new_user()), HTTPStatus.FORBIDDEN)
    assert not User.objects.filter(username="bjensen").exists()


def test_a_users_only_token_may_not_touch_groups(client, db):
    _token, plain = issue_token(name="HR", groups=False)
    hr = ScimClient(client, plain)
    assert hr.get("Users").status_code == HTTPStatus.OK
    assert_scim_error(hr.get("Groups"), HTTPStatus.FORBIDDEN)


@pytest.mark.spec("RFC 7644", "3.12")
def test_a_body_over_the_bound_answers_413_and_is_not_read(scim, settings):
    assert scim.post("Users", new_user()).status_code == HTTPStatus.CREATED
    huge = new_user("huge", title="x" * (5 * 1024 * 1024))
    response = scim.post("Users", huge)
    assert_scim_error(response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    assert not User.objects.filter(username="huge").exists()


@pytest.mark.spec("RFC 7644", "3.12")
@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (b"{not json", "invalidSyntax"),
        (b"[1, 2]", "invalidSyntax"),
        (b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}', "invalidValue"),
        (
            b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a b c/"'
            b', "active": true}',
            "invalidValue",
        ),
    ],
)
def test_malformed_bodies_answer_400(scim, body, scim_type):
    assert_scim_error(scim.post("Users", body), HTTPStatus.BAD_REQUEST, scim_type)
    assert User.objects.count() == 0


def test_a_body_that_is_not_json_by_its_type_answers_415(client, scim):
    response = client.post(
        "/scim/v2/Users",
        data="userName=x",
        content_type="application/x-www-form-urlencoded",
        headers={"Authorization": f"Bearer {scim.token}"},
    )
    assert_scim_error(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)


def test_an_unknown_endpoint_answers_404_and_bulk_501(scim):
    assert_scim_error(scim.get("Nonsense"), HTTPStatus.NOT_FOUND)
    response = scim.post("Bulk", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]})
    assert_scim_error(response, HTTPStatus.NOT_IMPLEMENTED)


def test_the_error_body_is_scim_json(client):
    response = client.get("/scim/v2/Users")
    assert response["Content-Type"] == SCIM


@pytest.mark.spec("RFC 7644", "3.12")
def test_a_nul_character_anywhere_is_invalid_value_and_changes_nothing(scim):
    """PostgreSQL cannot store U+0000 (idp/input_limits.py): in a body, a filter or a path it is a
    400 invalidValue before a lookup or a write could fail with a 500 (the PostgreSQL phase of
    `make test` holds the difference)."""
    created = scim.post("Users", new_user())
    assert created.status_code == HTTPStatus.CREATED
    user_id = created.json()["id"]
    for body in (
        new_user("nul", title="Engi\x00neer"),
        new_user(
            "nul",
            **{
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "\x00"}
            },
        ),
        {**new_user("nul"), "externalId\x00": "x"},
    ):
        assert_scim_error(scim.post("Users", body), HTTPStatus.BAD_REQUEST, "invalidValue")
    replace = [{"op": "replace", "path": "title", "value": "\x00"}]
    assert_scim_error(
        scim.patch(f"Users/{user_id}", replace), HTTPStatus.BAD_REQUEST, "invalidValue"
    )
    assert_scim_error(
        scim.get("Users", filter='userName eq "bj\x00"'), HTTPStatus.BAD_REQUEST, "invalidValue"
    )
    assert_scim_error(scim.get("Users/1\x00"), HTTPStatus.BAD_REQUEST, "invalidValue")
    assert not User.objects.filter(username="nul").exists()
    assert scim.get(f"Users/{user_id}").json()["title"] == "Engineer"


ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@pytest.mark.spec("RFC 7644", "3.12")
@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("title", {"title": "x" * 129}),
        ("name.givenName", {"name": {"givenName": "x" * 151, "familyName": "Jensen"}}),
        ("externalId", {"externalId": "x" * 256}),
        ("emails.type", {"emails": [{"value": "b@example.com", "type": "x" * 256}]}),
        ("employeeNumber", {ENTERPRISE_USER: {"employeeNumber": "x" * 65}}),
        ("manager.value", {ENTERPRISE_USER: {"manager": {"value": "x" * 256}}}),
    ],
)
def test_a_value_longer_than_its_column_is_invalid_value_not_a_database_error(
    scim, attribute, value
):
    """SQLite would store it; PostgreSQL refuses it (the PostgreSQL phase holds the 500 this
    was): a creation and a replacement alike."""
    created = scim.post("Users", new_user())
    assert created.status_code == HTTPStatus.CREATED
    body = assert_scim_error(
        scim.post("Users", new_user("long", **value)), HTTPStatus.BAD_REQUEST, "invalidValue"
    )
    assert attribute in body["detail"]
    assert not User.objects.filter(username="long").exists()
    user_id = created.json()["id"]
    replaced = scim.put(f"Users/{user_id}", new_user(**value))
    assert_scim_error(replaced, HTTPStatus.BAD_REQUEST, "invalidValue")
    assert scim.get(f"Users/{user_id}").json()["title"] == "Engineer"


@pytest.mark.spec("RFC 7644", "3.12")
def test_a_group_external_id_longer_than_its_column_is_invalid_value(scim):
    group = {"schemas": [GROUP_SCHEMA], "displayName": "Tour Guides", "externalId": "x" * 255}
    created = scim.post("Groups", group)
    assert created.status_code == HTTPStatus.CREATED
    too_long = {**group, "displayName": "Drivers", "externalId": "x" * 256}
    assert_scim_error(scim.post("Groups", too_long), HTTPStatus.BAD_REQUEST, "invalidValue")
    replaced = scim.put(f"Groups/{created.json()['id']}", {**group, "externalId": "y" * 256})
    assert_scim_error(replaced, HTTPStatus.BAD_REQUEST, "invalidValue")
    assert scim.get(f"Groups/{created.json()['id']}").json()["externalId"] == "x" * 255
