"""SCIM Users (RFC 7643 §4.1, RFC 7644 §3.3-§3.6): written through the accounts services,
audited with the SCIM client as actor; Entra ID's and Okta's PATCH dialects."""

from __future__ import annotations

import secrets
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.test import Client
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_application_model

from accounts.models import AuditEvent, User
from scim.models import ScimUser
from tests.accounts.conftest import OVERVIEW_URL, sign_in
from tests.scim.conftest import ENTERPRISE, assert_scim_error, new_user

pytestmark = pytest.mark.django_db


def created(scim, username="bjensen", **extra):
    response = scim.post("Users", new_user(username, **extra))
    assert response.status_code == HTTPStatus.CREATED, response.content
    return response


@pytest.mark.spec("RFC 7644", "3.3")
@pytest.mark.spec("RFC 7643", "4.3")
def test_creating_a_user_stores_the_directory_attributes_and_audits_the_scim_client(scim):
    response = created(scim)
    body = response.json()
    user = User.objects.get(username="bjensen")
    assert response["Location"].endswith(f"/scim/v2/Users/{user.pk}")
    assert response["ETag"] == body["meta"]["version"]
    assert body["id"] == str(user.pk)
    assert (user.first_name, user.last_name, user.email) == (
        "Barbara",
        "Jensen",
        "bjensen@example.com",
    )
    assert (user.employee_id, user.department, user.job_title) == (
        "701984",
        "Tour Operations",
        "Engineer",
    )
    assert ScimUser.objects.get(user=user).external_id == "ext-bjensen"
    assert body[ENTERPRISE] == {"employeeNumber": "701984", "department": "Tour Operations"}
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_CREATED, subject=user)
    assert event.actor is None
    assert event.actor_repr == "scim:Okta"
    assert event.extra["scim_token_id"] == scim.token_row.pk


@pytest.mark.spec("RFC 7644", "3.4.1")
def test_reading_a_user_by_id_and_an_unknown_id_answers_404(scim):
    user_id = created(scim).json()["id"]
    response = scim.get(f"Users/{user_id}")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["userName"] == "bjensen"
    assert_scim_error(scim.get("Users/999999"), HTTPStatus.NOT_FOUND)
    assert_scim_error(scim.get("Users/not-a-number"), HTTPStatus.NOT_FOUND)


@pytest.mark.spec("RFC 7644", "3.5.1")
def test_replacing_a_user_renames_them_and_changes_their_attributes(scim):
    body = created(scim).json()
    replacement = new_user("barbara.jensen", title="Manager")
    replacement[ENTERPRISE] = {"department": "Sales", "manager": {"value": "42"}}
    response = scim.put(f"Users/{body['id']}", replacement)
    assert response.status_code == HTTPStatus.OK, response.content
    user = User.objects.get(pk=body["id"])
    assert (user.username, user.job_title, user.department, user.employee_id) == (
        "barbara.jensen",
        "Manager",
        "Sales",
        "",
    )
    assert response.json()[ENTERPRISE]["manager"] == {"value": "42"}
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.USER_CHANGED, subject=user, actor_repr="scim:Okta"
    ).exists()


@pytest.fixture
def app(db):
    return get_application_model().objects.create(
        name="Wiki",
        client_id="wiki",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        redirect_uris="https://wiki.example.com/cb",
        algorithm="RS256",
    )


def _userinfo(access_value: str):
    return Client().get("/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {access_value}")


@pytest.mark.spec("RFC 7644", "3.5.2.3")
@pytest.mark.parametrize(
    "operation",
    [
        # Entra ID: capitalised op, no path, string boolean.
        {"op": "Replace", "value": {"active": "False"}},
        # Okta: a path and a JSON boolean.
        {"op": "replace", "path": "active", "value": False},
        # Entra ID again, with a path and a string boolean.
        {"op": "Replace", "path": "active", "value": "False"},
    ],
)
def test_a_patch_deactivating_a_user_ends_their_sessions_and_tokens(
    scim, user, password, app, operation
):
    browser = Client()
    sign_in(browser, "alice", password)
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.OK
    access = secrets.token_urlsafe(32)
    get_access_token_model().objects.create(
        user=user,
        application=app,
        token=access,
        scope="openid",
        expires=timezone.now() + timedelta(minutes=10),
    )
    assert _userinfo(access).status_code == HTTPStatus.OK  # positive path first

    response = scim.patch(f"Users/{user.pk}", [operation])

    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), response.content
    user.refresh_from_db()
    assert not user.is_active
    assert browser.get(OVERVIEW_URL).status_code == HTTPStatus.FOUND  # signed out
    assert _userinfo(access).status_code == HTTPStatus.UNAUTHORIZED
    event = AuditEvent.objects.get(type=AuditEvent.Type.USER_DEACTIVATED, subject=user)
    assert event.actor_repr == "scim:Okta"
    assert event.extra["sessions_ended"] == 1


@pytest.mark.spec("RFC 7644", "3.5.2")
def test_a_patch_with_paths_changes_names_and_the_enterprise_extension(scim):
    user_id = created(scim).json()["id"]
    response = scim.patch(
        f"Users/{user_id}",
        [
            {"op": "Replace", "path": "name.givenName", "value": "Babs"},
            {"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Marketing"},
            {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": {"value": "7"}},
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "b@example.org"},
            {"op": "Remove", "path": "title"},
        ],
    )
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), response.content
    user = User.objects.get(pk=user_id)
    assert (user.first_name, user.department, user.email, user.job_title) == (
        "Babs",
        "Marketing",
        "b@example.org",
        "",
    )
    assert ScimUser.objects.get(user=user).manager_ref == "7"


@pytest.mark.spec("RFC 7644", "3.14")
def test_if_match_with_the_current_etag_applies_and_with_an_old_one_answers_412(scim):
    response = created(scim)
    user_id, etag = response.json()["id"], response["ETag"]
    applied = scim.patch(
        f"Users/{user_id}",
        [{"op": "replace", "path": "title", "value": "Lead"}],
        headers={"If-Match": etag},
    )
    assert applied.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT)
    new_etag = scim.get(f"Users/{user_id}")["ETag"]
    assert new_etag != etag
    refused = scim.patch(
        f"Users/{user_id}",
        [{"op": "replace", "path": "title", "value": "Chief"}],
        headers={"If-Match": etag},
    )
    assert_scim_error(refused, HTTPStatus.PRECONDITION_FAILED)
    assert User.objects.get(pk=user_id).job_title == "Lead"
    gone = scim.delete(f"Users/{user_id}", headers={"If-Match": etag})
    assert_scim_error(gone, HTTPStatus.PRECONDITION_FAILED)


@pytest.mark.spec("RFC 7644", "3.6")
def test_deleting_a_user_deactivates_them_and_hides_them_from_scim(scim):
    user_id = created(scim).json()["id"]
    assert scim.delete(f"Users/{user_id}").status_code == HTTPStatus.NO_CONTENT
    user = User.objects.get(pk=user_id)
    assert not user.is_active
    assert AuditEvent.objects.filter(
        type=AuditEvent.Type.USER_DEACTIVATED, subject=user, actor_repr="scim:Okta"
    ).exists()
    assert_scim_error(scim.get(f"Users/{user_id}"), HTTPStatus.NOT_FOUND)
    assert scim.get("Users", filter='userName eq "bjensen"').json()["totalResults"] == 0
    assert_scim_error(scim.delete(f"Users/{user_id}"), HTTPStatus.NOT_FOUND)


def test_with_hard_delete_on_deleting_a_user_deletes_the_account(scim, settings):
    settings.IDP_SCIM_HARD_DELETE = True
    user_id = created(scim).json()["id"]
    assert scim.delete(f"Users/{user_id}").status_code == HTTPStatus.NO_CONTENT
    assert not User.objects.filter(pk=user_id).exists()
    assert AuditEvent.objects.get(type=AuditEvent.Type.USER_DELETED).actor_repr == "scim:Okta"


def test_the_last_active_superuser_cannot_be_deactivated_or_deleted(scim, admin_user):
    # Positive path: with a second superuser, the first may be deactivated.
    second = User.objects.create_superuser("root2", "root2@example.com", None)
    response = scim.patch(
        f"Users/{second.pk}", [{"op": "replace", "path": "active", "value": False}]
    )
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT)
    refused = scim.patch(
        f"Users/{admin_user.pk}", [{"op": "Replace", "value": {"active": "False"}}]
    )
    assert_scim_error(refused, HTTPStatus.BAD_REQUEST, "invalidValue")
    assert_scim_error(scim.delete(f"Users/{admin_user.pk}"), HTTPStatus.BAD_REQUEST, "invalidValue")
    admin_user.refresh_from_db()
    assert admin_user.is_active


@pytest.mark.spec("RFC 7644", "3.12")
def test_a_duplicate_user_name_or_a_rename_onto_one_answers_409_uniqueness(scim):
    created(scim, "bjensen")
    other = created(scim, "jsmith").json()["id"]
    duplicate = scim.post("Users", new_user("BJensen"))
    assert_scim_error(duplicate, HTTPStatus.CONFLICT, "uniqueness")
    rename = scim.patch(
        f"Users/{other}", [{"op": "replace", "path": "userName", "value": "bjensen"}]
    )
    assert_scim_error(rename, HTTPStatus.CONFLICT, "uniqueness")
    assert User.objects.get(pk=other).username == "jsmith"


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "evil@example.net"},
        {"op": "replace", "path": "userName", "value": "someone"},
        {"op": "replace", "path": "password", "value": "a new long passphrase 42"},
    ],
)
def test_an_administrator_s_sign_in_name_email_and_password_are_not_changed_by_scim(
    scim, admin_user, operation
):
    # Positive path: their other attributes may change.
    title = scim.patch(f"Users/{admin_user.pk}", [{"op": "add", "path": "title", "value": "CTO"}])
    assert title.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), title.content
    assert_scim_error(scim.patch(f"Users/{admin_user.pk}", [operation]), HTTPStatus.FORBIDDEN)
    admin_user.refresh_from_db()
    assert (admin_user.username, admin_user.email) == ("root", "root@example.com")


def test_entra_s_work_email_path_changes_the_address_of_an_account_made_in_the_admin(scim, user):
    response = scim.patch(
        f"Users/{user.pk}",
        [{"op": "Replace", "path": 'emails[type eq "work"].value', "value": "alice@example.org"}],
    )
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), response.content
    user.refresh_from_db()
    assert user.email == "alice@example.org"
    assert scim.get(f"Users/{user.pk}").json()["emails"] == [
        {"value": "alice@example.org", "type": "work"}
    ]


@pytest.mark.spec("RFC 7644", "3.6")
def test_creating_again_a_user_the_client_deleted_restores_the_account(scim):
    user_id = created(scim).json()["id"]
    assert scim.delete(f"Users/{user_id}").status_code == HTTPStatus.NO_CONTENT
    again = scim.post("Users", new_user("BJensen", title="Returning"))
    assert again.status_code == HTTPStatus.CREATED, again.content
    assert again.json()["id"] == user_id
    user = User.objects.get(pk=user_id)
    assert (user.is_active, user.username, user.job_title) == (True, "BJensen", "Returning")
    assert AuditEvent.objects.get(type=AuditEvent.Type.USER_ACTIVATED).actor_repr == "scim:Okta"
    assert scim.get(f"Users/{user_id}").status_code == HTTPStatus.OK
