"""The client admin's access page (policy, assignments, roles, claim mapping) and claims preview."""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import AuditEvent
from oauth_clients import access
from oauth_clients.models import AppRole, Assignment, Client, RoleGrant
from tests.clients.conftest import grant_client_permissions


def url(name: str, client: Client) -> str:
    return reverse(f"admin:oauth_clients_client_{name}", args=[client.pk])


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def wiki(web_client):
    return web_client[0]


@pytest.fixture
def editors(db, user):
    group = Group.objects.create(name="editors")
    user.groups.add(group)
    return group


def post(admin_client, wiki, action: str, **fields):
    data = {"action": action, **{f"{action}-{key}": value for key, value in fields.items()}}
    return admin_client.post(url("access", wiki), data)


def test_the_change_page_links_to_access_and_the_preview(admin_client, wiki):
    page = admin_client.get(url("change", wiki)).content.decode()
    assert "Open to every active account." in page
    assert url("access", wiki) in page
    assert url("claims_preview", wiki) in page


def test_an_administrator_limits_an_app_to_a_group_through_the_services(
    admin_client, admin_user, wiki, editors, user
):
    assert admin_client.get(url("access", wiki)).status_code == HTTPStatus.OK
    response = post(admin_client, wiki, "assign", group=editors.pk)
    assert response.status_code == HTTPStatus.FOUND
    response = post(admin_client, wiki, "policy", access_policy="assigned")
    assert response.status_code == HTTPStatus.FOUND
    wiki.refresh_from_db()
    assert wiki.access_policy == "assigned"
    assert access.may_use(user=user, client=wiki)
    events = AuditEvent.objects.filter(client=wiki, type=AuditEvent.Type.CLIENT_CHANGED)
    assert {e.extra["change"] for e in events} == {"assignment_added", "access_policy"}
    assert all(e.actor == admin_user for e in events)
    page = admin_client.get(url("access", wiki)).content.decode()
    assert "group editors" in page

    row = Assignment.objects.get(client=wiki)
    response = admin_client.post(url("access", wiki), {"action": "unassign", "id": row.pk})
    assert response.status_code == HTTPStatus.FOUND
    assert not Assignment.objects.exists()
    assert not access.may_use(user=user, client=wiki)


def test_assign_needs_a_group_or_a_known_user(admin_client, wiki, editors):
    assert post(admin_client, wiki, "assign", username="alice").status_code == HTTPStatus.FOUND
    response = post(admin_client, wiki, "assign", username="ghost")
    assert response.status_code == HTTPStatus.OK
    assert "No user named ghost." in response.content.decode()
    response = post(admin_client, wiki, "assign", group=editors.pk, username="alice")
    assert "not both" in response.content.decode()
    assert Assignment.objects.count() == 1


def test_roles_are_defined_granted_and_revoked_and_reserved_names_refused(
    admin_client, wiki, editors, user
):
    assert post(admin_client, wiki, "role", name="editor").status_code == HTTPStatus.FOUND
    role = AppRole.objects.get(client=wiki)
    response = post(admin_client, wiki, "grant", role=role.pk, group=editors.pk)
    assert response.status_code == HTTPStatus.FOUND
    assert access.roles_for(user=user, client=wiki) == ["editor"]

    response = post(admin_client, wiki, "role", name="email")
    assert response.status_code == HTTPStatus.OK
    assert "reserved claim name" in response.content.decode()
    assert list(AppRole.objects.values_list("name", flat=True)) == ["editor"]

    grant = RoleGrant.objects.get()
    admin_client.post(url("access", wiki), {"action": "revoke", "id": grant.pk})
    assert access.roles_for(user=user, client=wiki) == []
    admin_client.post(url("access", wiki), {"action": "delete_role", "id": role.pk})
    assert not AppRole.objects.exists()


def test_the_claim_mapping_is_saved_and_previewed_for_a_chosen_user(
    admin_client, wiki, editors, user, admin_user
):
    response = admin_client.post(
        url("access", wiki),
        {
            "action": "claims",
            "claims-roles_claim": "wiki_roles",
            "claims-groups_filter": "list",
            "claims-claim_groups": [editors.pk],
            "claims-claim_attributes": "mail = email\nsurname = last_name",
        },
    )
    assert response.status_code == HTTPStatus.FOUND
    wiki.refresh_from_db()
    assert wiki.claim_attributes == {"mail": "email", "surname": "last_name"}
    post(admin_client, wiki, "role", name="editor")
    post(admin_client, wiki, "grant", role=AppRole.objects.get().pk, username="alice")

    preview = admin_client.get(url("claims_preview", wiki), {"username": "alice"})
    assert preview.status_code == HTTPStatus.OK
    assert preview.context["preview"] == {
        "may_use": True,
        "claims": {
            "wiki_roles": ["editor"],
            "mail": "alice@example.com",
            "surname": "Liddell",
        },
    }
    assert "May sign in to this app." in preview.content.decode()
    # An app limited to others: the preview says so.
    post(admin_client, wiki, "policy", access_policy="assigned")
    refused = admin_client.get(url("claims_preview", wiki), {"username": "alice"})
    assert refused.context["preview"]["may_use"] is False
    assert "May not sign in" in refused.content.decode()
    unknown = admin_client.get(url("claims_preview", wiki), {"username": "ghost"})
    assert unknown.context["preview"] is None


def test_a_bad_claim_mapping_is_shown_on_the_form(admin_client, wiki):
    response = admin_client.post(
        url("access", wiki),
        {
            "action": "claims",
            "claims-roles_claim": "roles",
            "claims-groups_filter": "none",
            "claims-claim_attributes": "email = email",
        },
    )
    assert response.status_code == HTTPStatus.OK
    assert "reserved claim name" in response.content.decode()
    wiki.refresh_from_db()
    assert wiki.claim_attributes == {}


def test_view_permission_shows_the_page_but_changes_nothing(client, staff_user, wiki, editors):
    grant_client_permissions(staff_user, "view_client")
    client.force_login(staff_user)
    assert client.get(url("access", wiki)).status_code == HTTPStatus.OK
    assert client.get(url("claims_preview", wiki)).status_code == HTTPStatus.OK
    response = post(client, wiki, "assign", group=editors.pk)
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not Assignment.objects.exists()
