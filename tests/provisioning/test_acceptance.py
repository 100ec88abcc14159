"""Acceptance: joiners, movers and leavers of an app reach its SCIM server (issue 30).

The app's SCIM server is the python-scim reference server on 127.0.0.1; the IdP's changes go
through the real database queue and one run of its real worker each time; the assertions read
back what the app's server stores.
"""

from __future__ import annotations

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from accounts import services as account_services
from accounts.models import AuditEvent
from oauth_clients import services as client_services
from provisioning.models import ProvisionedUser, ProvisioningDelivery
from tests.oidc.backchannel_helpers import DATABASE_TASKS, IMMEDIATE_TASKS
from tests.provisioning.conftest import (
    assigned_group,
    make_target,
    register_app,
    run_worker_once,
)

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Status = ProvisioningDelivery.Status


def admin_request(admin_user):
    request = RequestFactory().post("/admin/accounts/user/")
    request.user = admin_user
    return request


@pytest.mark.spec("RFC 7644", "3.3")
@pytest.mark.spec("RFC 7644", "3.5.1")
@pytest.mark.spec("RFC 7644", "3.5.2")
@pytest.mark.django_db(transaction=True)
def test_joiner_mover_and_leavers_reach_the_apps_scim_server_within_one_worker_run(
    settings, admin_user, user, scim_server
):
    settings.TASKS = DATABASE_TASKS
    app = register_app(admin_user)
    group = assigned_group(admin_user, app)
    target = make_target(admin_user, app, scim_server.base_url)
    bob = get_user_model().objects.create_user("bob", "bob@example.com", None, first_name="Bob")
    account_services.add_members(group=group, users=[bob], actor=admin_user)
    run_worker_once()  # the first sync of the new target: bob, already a member
    assert set(scim_server.users()) == {"bob"}

    # Joiner: alice is put into the group assigned to the app.
    account_services.add_members(group=group, users=[user], actor=admin_user)
    run_worker_once()
    alice = scim_server.users()["alice"]
    assert alice["active"] is True
    assert alice["externalId"] == str(user.pk)
    assert alice["name"] == {
        "givenName": "Alice",
        "familyName": "Liddell",
        "formatted": "Alice Liddell",
    }
    assert alice["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]
    row = ProvisionedUser.objects.get(target=target, user=user)
    assert row.remote_id == alice["id"]

    # Mover: an administrator changes her department.
    user.department = "Research"
    account_services.save_admin_changes(
        user=user,
        changed_fields=["department"],
        actor=admin_user,
        request=admin_request(admin_user),
    )
    run_worker_once()
    alice = scim_server.users()["alice"]
    assert alice[ENTERPRISE]["department"] == "Research"
    assert alice["id"] == row.remote_id  # the same account, replaced (PUT), not a second one

    # Leaver: removed from the group, her last assigned one.
    account_services.remove_members(group=group, users=[user], actor=admin_user)
    run_worker_once()
    assert scim_server.users()["alice"]["active"] is False
    assert scim_server.users()["bob"]["active"] is True

    # Leaver: an administrator deactivates bob.
    account_services.deactivate_user(user=bob, actor=admin_user, request=None)
    run_worker_once()
    assert scim_server.users()["bob"]["active"] is False

    actions = list(
        ProvisioningDelivery.objects.filter(status=Status.SENT)
        .order_by("pk")
        .values_list("user_repr", "action", "last_status_code")
    )
    assert actions == [
        ("bob", "create", HTTPStatus.CREATED),
        ("alice", "create", HTTPStatus.CREATED),
        ("alice", "update", HTTPStatus.OK),
        ("alice", "deactivate", HTTPStatus.NO_CONTENT),
        ("bob", "deactivate", HTTPStatus.NO_CONTENT),
    ]
    sent = AuditEvent.objects.filter(type=AuditEvent.Type.PROVISIONING_SENT, client=app)
    assert sorted(sent.values_list("subject__username", "extra__action")) == sorted(
        (who, action) for who, action, _status in actions
    )
    assert not AuditEvent.objects.filter(type=AuditEvent.Type.PROVISIONING_FAILED).exists()


def test_a_direct_assignment_and_unassignment_and_a_reactivation_reach_the_app(
    settings, django_capture_on_commit_callbacks, admin_user, user, scim_server
):
    """The app-wide path: an assignment change reconciles the whole app (who may use it)."""
    settings.TASKS = IMMEDIATE_TASKS
    app = register_app(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        make_target(admin_user, app, scim_server.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        client_services.assign(client=app, user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        client_services.unassign(client=app, user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False

    with django_capture_on_commit_callbacks(execute=True):
        client_services.assign(client=app, user=user, actor=admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.deactivate_user(user=user, actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False
    with django_capture_on_commit_callbacks(execute=True):
        account_services.activate_user(user=user, actor=admin_user)
    stored = scim_server.users()
    assert list(stored) == ["alice"]  # one account throughout, re-activated in place
    assert stored["alice"]["active"] is True


def test_leaving_one_of_two_assigned_groups_keeps_the_account_and_leaving_the_last_ends_it(
    settings, django_capture_on_commit_callbacks, admin_user, user, scim_server
):
    settings.TASKS = IMMEDIATE_TASKS
    app = register_app(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        first = assigned_group(admin_user, app, "wiki-editors")
        second = assigned_group(admin_user, app, "wiki-readers")
        make_target(admin_user, app, scim_server.base_url)
    with django_capture_on_commit_callbacks(execute=True):
        account_services.add_members(group=first, users=[user], actor=admin_user)
        account_services.add_members(group=second, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True

    with django_capture_on_commit_callbacks(execute=True):
        account_services.remove_members(group=first, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is True  # still assigned through the other
    assert not ProvisioningDelivery.objects.filter(action="deactivate").exists()

    with django_capture_on_commit_callbacks(execute=True):
        account_services.remove_members(group=second, users=[user], actor=admin_user)
    assert scim_server.users()["alice"]["active"] is False
