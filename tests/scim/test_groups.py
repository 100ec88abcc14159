"""SCIM Groups (RFC 7643 §4.2): this IdP's groups, changed through the group services (audited,
the nesting closure kept), with Entra ID's and Okta's member PATCHes."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent, GroupClosure, User
from tests.scim.conftest import GROUP_SCHEMA, assert_scim_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(db):
    return [User.objects.create_user(f"user{i}", f"user{i}@example.com") for i in range(3)]


def members(scim, group_id) -> list[str]:
    return [member["value"] for member in scim.get(f"Groups/{group_id}").json().get("members", [])]


@pytest.mark.spec("RFC 7644", "3.3")
def test_creating_a_group_with_members_goes_through_the_group_services(scim, people):
    response = scim.post(
        "Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Engineering",
            "externalId": "eng-1",
            "members": [{"value": str(people[0].pk)}, {"value": str(people[1].pk)}],
        },
    )
    assert response.status_code == HTTPStatus.CREATED, response.content
    group = Group.objects.get(name="Engineering")
    assert set(group.user_set.values_list("pk", flat=True)) == {people[0].pk, people[1].pk}
    assert GroupClosure.objects.filter(ancestor=group, descendant=group, depth=0).exists()
    assert AuditEvent.objects.get(type=AuditEvent.Type.GROUP_CREATED).actor_repr == "scim:Okta"
    assert (
        AuditEvent.objects.filter(
            type=AuditEvent.Type.GROUP_MEMBER_ADDED, actor_repr="scim:Okta"
        ).count()
        == 2
    )
    assert response.json()["externalId"] == "eng-1"


@pytest.fixture
def group(scim, people):
    response = scim.post(
        "Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Eng",
            "members": [{"value": str(people[0].pk)}],
        },
    )
    return response.json()["id"]


@pytest.mark.spec("RFC 7644", "3.5.2.1")
def test_entra_adds_and_removes_members_with_value_arrays_and_filter_paths(scim, people, group):
    one, two, three = (str(person.pk) for person in people)
    added = scim.patch(
        f"Groups/{group}",
        [{"op": "Add", "path": "members", "value": [{"value": two}, {"value": three}]}],
    )
    assert added.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), added.content
    assert sorted(members(scim, group)) == sorted([one, two, three])
    removed = scim.patch(
        f"Groups/{group}", [{"op": "Remove", "path": f'members[value eq "{one}"]'}]
    )
    assert removed.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), removed.content
    assert sorted(members(scim, group)) == sorted([two, three])
    # Entra ID's other form: the value names what to remove.
    scim.patch(f"Groups/{group}", [{"op": "Remove", "path": "members", "value": [{"value": two}]}])
    assert members(scim, group) == [three]
    assert (
        AuditEvent.objects.filter(
            type=AuditEvent.Type.GROUP_MEMBER_REMOVED, actor_repr="scim:Okta"
        ).count()
        == 2
    )


@pytest.mark.spec("RFC 7644", "3.5.2.3")
def test_okta_renames_a_group_and_replaces_its_members_without_a_path(scim, people, group):
    response = scim.patch(
        f"Groups/{group}",
        [
            {
                "op": "replace",
                "value": {"displayName": "Engineering", "members": [{"value": str(people[2].pk)}]},
            }
        ],
    )
    assert response.status_code in (HTTPStatus.OK, HTTPStatus.NO_CONTENT), response.content
    assert Group.objects.get(pk=group).name == "Engineering"
    assert members(scim, group) == [str(people[2].pk)]
    assert (
        AuditEvent.objects.get(type=AuditEvent.Type.GROUP_CHANGED).extra["previous_name"] == "Eng"
    )


def test_a_member_that_is_no_user_is_refused(scim, group):
    response = scim.patch(
        f"Groups/{group}", [{"op": "add", "path": "members", "value": [{"value": "999999"}]}]
    )
    assert_scim_error(response, HTTPStatus.BAD_REQUEST, "invalidValue")


def test_a_duplicate_group_name_answers_409(scim, group):
    response = scim.post("Groups", {"schemas": [GROUP_SCHEMA], "displayName": "eng"})
    assert_scim_error(response, HTTPStatus.CONFLICT, "uniqueness")


@pytest.mark.spec("RFC 7644", "3.4.2.2")
def test_groups_are_found_by_name_and_by_member(scim, people, group):
    found = scim.get("Groups", filter='displayName eq "eng"').json()
    assert [resource["id"] for resource in found["Resources"]] == [group]
    by_member = scim.get("Groups", filter=f'members[value eq "{people[0].pk}"]').json()
    assert by_member["totalResults"] == 1
    assert scim.get("Groups", filter=f'members eq "{people[1].pk}"').json()["totalResults"] == 0


@pytest.mark.spec("RFC 7644", "3.6")
def test_deleting_a_group_removes_its_members_first(scim, people, group):
    assert scim.delete(f"Groups/{group}").status_code == HTTPStatus.NO_CONTENT
    assert not Group.objects.filter(pk=group).exists()
    assert AuditEvent.objects.get(type=AuditEvent.Type.GROUP_DELETED).actor_repr == "scim:Okta"
    assert_scim_error(scim.get(f"Groups/{group}"), HTTPStatus.NOT_FOUND)


def test_a_group_made_in_the_admin_is_served_with_its_members(scim, people):
    made = Group.objects.create(name="Made elsewhere")
    made.user_set.add(people[1])
    response = scim.get(f"Groups/{made.pk}")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["members"][0]["value"] == str(people[1].pk)
